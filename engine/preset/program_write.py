"""Write a preset's program (``program.py``): its decide, its requests, its other templates."""

from __future__ import annotations

from collections.abc import Iterable

from ..expr.emit import Module
from ..expr.leaves import Leaf, write_function
from .model import CompiledPreset
from .program import Hoister, Program, compile_module, once_per_run, where_in
from .program_decide import write_decide
from .program_steps import write_steps

__all__ = ["write_program"]


def write_program(preset: CompiledPreset, leaves: Iterable[Leaf]) -> Program:
    """Write and compile ``preset``'s module; every leaf gets its function. A TemplateError
    raised while writing a leaf is reported as a located PresetError (PresetErrors)."""
    leaves = list(leaves)
    module = Module(preset.name)
    where = where_in(preset.source)
    hoister = Hoister(module)
    write_decide(module, preset, hoister, where, leaves)
    step_names, run_fixed = write_steps(module, preset, hoister, where)
    hoister.write()
    pending = [leaf for leaf in leaves if leaf.fn is None]
    names = [write_function(module, leaf, where) for leaf in pending]
    namespace = compile_module(module, preset.name)
    for leaf, name in zip(pending, names, strict=True):
        leaf.fn = namespace[name]
    return Program(
        module=module,
        decide=namespace["decide"],
        fixed_values=namespace["fixed"],
        steps={
            pointer: once_per_run(namespace[name]) if pointer in run_fixed else namespace[name]
            for pointer, name in step_names.items()
        },
    )
