"""A batch's answer, read: an asynchronous job polled to its end, and the per-item errors.

``JobReader.settle`` takes a bulk request's (successful) answer and says which items
the vendor refused, with its message and the preset's hint. With a ``job``, the answer
names a job: it is journaled at once, then polled (soon, then less often, up to every
``job.every`` seconds) until its
status is ``done`` (read the results), ``failed`` (the whole batch was refused: the
sender splits it) or ``job.timeout`` passes (its events fail, never sent twice).

``resume`` finishes the jobs a crashed run left open: it polls each (it never sends
its batch again) and records, per event, the step done or the vendor's error, for the
run to apply when it reaches those events.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from ..errors import DeliveryError, RelayError
from ..preset.model import BatchSpec, StepSpec
from ..runtime.build import assemble, failer
from ..runtime.decision import redact
from .deliver import Deliverer, Tally
from .journal import Journal
from .retry import parse_body

__all__ = ["FIRST_POLL_DIVISOR", "ItemError", "JobFailed", "JobReader", "origin", "resume"]

#: The first poll comes after ``job.every`` divided by this; each wait then doubles, up to ``every``:
#: a quick job is seen done soon, a long one is not polled more than every ``every`` seconds.
FIRST_POLL_DIVISOR = 8


@dataclass(frozen=True)
class ItemError:
    """The vendor refused one item of a batch."""

    message: str
    hint: str | None = None
    status: int | str | None = None


class JobFailed(RelayError):
    """The batch as a whole was refused (a job ended in a ``failed`` status), or its answer
    cannot be read: ``split`` says whether sending smaller batches may find the offender.
    ``answer`` is a failed job's last status (its report may still name every item's error)."""

    def __init__(self, message: str, *, split: bool = True, answer: Any = None) -> None:
        self.message = message
        self.split = split
        self.answer = answer
        super().__init__(message)


@dataclass(frozen=True)
class Member:
    """What a job needs to know of one item of its batch: its events' journal keys and its key."""

    events: tuple[str, ...]
    key: str | None


class JobReader:
    def __init__(self, deliverer: Deliverer, journal: Journal) -> None:
        self.deliverer = deliverer
        self.journal = journal
        preset = deliverer.preset
        self._shared = {"settings": deliverer.settings.values, "constants": preset.constants}

    def settle(
        self,
        step: StepSpec,
        group: Any,
        submit: Any,
        status: int,
        members: Sequence[Member],
        tally: Tally,
        scope: Mapping[str, Any],
        origin: str,
    ) -> tuple[dict[int, ItemError], str | None]:
        """Per-item errors (by position in the batch) for a batch whose bulk request (to
        ``origin``) got ``submit`` (parsed) with ``status``; and the journal reference of its
        job, if any, which the caller drops once it has recorded the items' progress."""
        batch = step.batch
        assert batch is not None
        if batch.job is None:
            return self.results(batch, group, None, submit, status, members, tally, scope, origin), None
        job = self._evaluate(batch.job.id, {**self._shared, "group": group, "response": submit}, "job.id")
        if job is None or job == "":
            raise JobFailed("the bulk answer names no job (job.id rendered empty)", split=False)
        ref = uuid.uuid4().hex
        self.journal.open_job(ref, step.name, group, job, [[*m.events, m.key] for m in members])
        return self.finished(step, group, job, members, tally, scope, origin), ref

    def finished(
        self,
        step: StepSpec,
        group: Any,
        job: Any,
        members: Sequence[Member],
        tally: Tally,
        scope: Mapping[str, Any],
        origin: str,
    ) -> dict[int, ItemError]:
        """Poll ``job`` to its end and read its per-item errors. A job that ended ``failed`` is
        a whole-batch refusal, unless its report names an error for every item of the batch."""
        batch = step.batch
        assert batch is not None
        try:
            final = self.poll(step, group, job, tally, scope)
        except JobFailed as failed:
            if failed.answer is None or batch.results is None:
                raise
            errors = self.results(batch, group, job, failed.answer, 200, members, tally, scope, origin)
            if len(errors) < len(members):
                raise
            return errors
        return self.results(batch, group, job, final, 200, members, tally, scope, origin)

    def poll(self, step: StepSpec, group: Any, job: Any, tally: Tally, scope: Mapping[str, Any]) -> Any:
        """Poll the job until it ends; its last answer. JobFailed for a failed or vanished job."""
        spec = step.batch.job if step.batch is not None else None
        assert spec is not None
        deliverer = self.deliverer
        give_up_at = deliverer.clock() + spec.timeout
        context = {**self._shared, "group": group, "job": job}
        wait = spec.every / FIRST_POLL_DIVISOR
        while True:
            deliverer.sleep(wait)
            wait = min(spec.every, wait * 2)
            request = assemble(
                spec.poll, {**context, "now": deliverer.clock()}, fail=failer(deliverer.preset, self._secrets, "")
            )
            try:
                answer = deliverer.send(request, tally, scope)
            except DeliveryError as exc:
                if exc.stop:
                    raise
                raise JobFailed(f"job {job}: its status could not be read: {exc.detail}", split=False) from None
            body = parse_body(answer.content, answer.content_type)
            status = self._evaluate(spec.status, {**context, "response": body}, "job.status")
            if str(status) in spec.done:
                return body
            if str(status) in spec.failed:
                why = (
                    self._evaluate(spec.message, {**context, "response": body}, "job.message") if spec.message else None
                )
                raise JobFailed(f"job {job} ended {status}" + (f": {why}" if why else ""), answer=body)
            if deliverer.clock() >= give_up_at:
                raise JobFailed(
                    f"job {job} did not end within {spec.timeout:g} s (status {status}); its events are kept"
                    " for replay",
                    split=False,
                )

    def results(
        self,
        batch: BatchSpec,
        group: Any,
        job: Any,
        final: Any,
        status: int,
        members: Sequence[Member],
        tally: Tally,
        scope: Mapping[str, Any],
        trusted: str,
    ) -> dict[int, ItemError]:
        """The vendor's per-item errors, by position; JobFailed when its report cannot be read.

        A report whose URL comes from an answer is fetched with the preset's credentials only
        when it is on the ``trusted`` origin (where the bulk request went): a key never goes to a host the
        vendor merely named."""
        spec = batch.results
        if spec is None:
            return {}
        context = {**self._shared, "group": group, "job": job, "response": final, "status": status}
        if spec.when is not None and not self._evaluate(spec.when, context, "results.when"):
            return {}
        refused = self._evaluate(spec.count, context, "results.count") if spec.count is not None else None
        if spec.request is not None:
            fail = failer(self.deliverer.preset, self._secrets, "")
            now = {**context, "now": self.deliverer.clock()}
            request = assemble(spec.request, now, fail=fail)
            if origin(self.destination(request.url)) != trusted:
                request = assemble(replace(spec.request, auth=()), now, fail=fail)
            try:
                answer = self.deliverer.send(request, tally, scope)
            except DeliveryError as exc:
                if exc.stop:
                    raise
                raise JobFailed(f"the per-item report could not be read: {exc.detail}", split=False) from None
            context = {**context, "response": _report(answer.content, answer.content_type), "text": answer.text}
        errors = self._evaluate(spec.errors, context, "results.errors")
        if errors is None:
            return {}
        if not isinstance(errors, list):
            raise JobFailed("the per-item report is not a list (results.errors)", split=False)
        by_key = {member.key: index for index, member in enumerate(members) if member.key is not None}
        found: dict[int, ItemError] = {}
        for error in errors:
            each = {**context, "error": error}
            if spec.index is not None:
                position = self._evaluate(spec.index, each, "results.index")
                index = position if isinstance(position, int) and 0 <= position < len(members) else None
            else:
                assert spec.key is not None
                index = by_key.get(str(self._evaluate(spec.key, each, "results.key")))
            if index is None:
                continue  # an error about no item of this batch
            message = self._evaluate(spec.message, each, "results.message") if spec.message is not None else None
            text = message if isinstance(message, str) and message else json.dumps(error, ensure_ascii=False)[:500]
            hint = self._evaluate(spec.hint, {**each, "message": text}, "results.hint") if spec.hint else None
            found[index] = ItemError(
                redact(text, self._secrets), redact(" ".join(str(hint).split()), self._secrets) if hint else None
            )
        if isinstance(refused, (int, str)) and str(refused).isdigit() and int(refused) > len(found):
            unnamed = ItemError(
                f"the vendor reports {int(refused)} items refused but names {len(found)}: this one may be among"
                " them, so it is kept for replay"
            )
            found.update({index: unnamed for index in range(len(members)) if index not in found})
        return found

    def destination(self, url: str) -> str:
        """Where ``url`` really goes (a redirecting transport sends some URLs elsewhere)."""
        target = getattr(self.deliverer.transport, "target", None)
        return str(target(url)) if callable(target) else url

    @property
    def _secrets(self) -> tuple[str, ...]:
        return self.deliverer.settings.secrets

    def _evaluate(self, renderer: Any, context: Mapping[str, Any], where: str) -> Any:
        """A template over a vendor's answer; one it cannot read fails the batch's reading, so
        an item is never counted delivered on an answer relay did not understand."""
        try:
            return renderer(context)
        except Exception as exc:
            raise JobFailed(f"the vendor's answer could not be read ({where}: {exc})", split=False) from None


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: where credentials may go."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _report(content: bytes, content_type: str) -> Any:
    """A per-item report: its JSON, or for a CSV file (a vendor's error file) its
    rows as mappings keyed by the header row."""
    if "csv" not in content_type.lower():
        return parse_body(content, content_type)
    text = content.decode("utf-8-sig", "replace")
    return [dict(row) for row in csv.DictReader(io.StringIO(text))]


def resume(deliverer: Deliverer, journal: Journal, tally: Tally) -> int:
    """Finish every job a crashed run left open, by polling it; the number finished.

    Each event of a finished job gets its step done, or the vendor's error, in the journal;
    the run applies that when it reaches the event, without sending it again.
    """
    reader = JobReader(deliverer, journal)
    scope = {"settings": deliverer.settings.values, "constants": deliverer.preset.constants}
    finished = 0
    for open_job in journal.open_jobs():
        members = [Member(tuple(entry[:-1]), entry[-1]) for entry in open_job.keys]
        keys = [key for member in members for key in member.events]
        step = next((s for s in deliverer.preset.steps if s.name == open_job.step and s.batch), None)
        failures: dict[str, tuple[str, str | None, Any]] = {}
        if step is None or step.batch is None or step.batch.job is None:
            journal.finish_job(open_job.ref, open_job.step, failures, [])  # the preset changed: send again
            continue
        poll = step.batch.job.poll
        try:
            context = {**scope, "group": open_job.group, "job": open_job.job, "now": deliverer.clock()}
            where = origin(reader.destination(assemble(poll, context, fail=failer(deliverer.preset, (), "")).url))
            errors = reader.finished(step, open_job.group, open_job.job, members, tally, scope, where)
        except (JobFailed, DeliveryError) as exc:
            message = exc.message if isinstance(exc, JobFailed) else exc.detail
            errors = {index: ItemError(message) for index in range(len(members))}
        for index, member in enumerate(members):
            if index in errors:
                for key in member.events:
                    failures[key] = (errors[index].message, errors[index].hint, errors[index].status)
        journal.finish_job(open_job.ref, step.name, failures, keys)
        finished += 1
    journal.flush()
    return finished
