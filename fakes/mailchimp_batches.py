"""Mailchimp's Batch Operations API, for the Mailchimp fake (facts: fakes/README.md#mailchimp).

- ``POST /3.0/batches`` takes ``operations`` (``method``, ``path`` relative to /3.0, ``params``,
  ``body`` as JSON text, ``operation_id``) and answers 200 with the batch: ``id``, ``status``
  ``pending``, ``total_operations``, ``finished_operations``, ``errored_operations``,
  ``submitted_at``, ``completed_at``, ``response_body_url``.
- ``GET /3.0/batches`` lists the batches; ``GET /3.0/batches/{id}`` walks one through
  ``pending``, ``preprocessing``, ``started`` and ``finalizing`` (one state per read, see
  ``JobTiming``) to ``finished``. The operations
  run when it finishes, in order, each answered exactly as the API answers it on its own.
- ``response_body_url`` then links a gzipped tar archive of JSON files, each a list of
  ``{status_code, operation_id, response}`` (``response``: the answer's body, as text), at
  most ``RESULTS_PER_FILE`` per file. Like the storage link Mailchimp gives, it needs no key.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable
from typing import Any

from .bulk import BulkVendor, ItemError, Job, Reject, iso
from .server import FakeRequest, FakeResponse

__all__ = ["RESULTS_PATH", "RESULTS_PER_FILE", "BatchOperations"]

#: Where the fake serves a finished batch's results (Mailchimp's link is to a storage bucket).
RESULTS_PATH = "/mailchimp-api-batch/"
RESULTS_PER_FILE = 500
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
STATES = ("pending", "preprocessing", "started", "finalizing")


class BatchOperations:
    """The ``/3.0/batches`` routes of ``vendor``; ``route`` answers one operation as the API would,
    and ``problem`` words an error as Mailchimp does."""

    def __init__(
        self,
        vendor: BulkVendor,
        route: Callable[[FakeRequest], FakeResponse],
        problem: Callable[..., FakeResponse],
    ) -> None:
        self.vendor = vendor
        self.route = route
        self.problem = problem

    def handles(self, path: str) -> bool:
        return path == "/3.0/batches" or path.startswith(("/3.0/batches/", RESULTS_PATH))

    def handle(self, request: FakeRequest) -> FakeResponse:
        path, method = request.path.rstrip("/"), request.method
        if path.startswith(RESULTS_PATH) and method == "GET":
            return self._results(path[len(RESULTS_PATH) :])
        if path == "/3.0/batches" and method == "POST":
            return self._start(request)
        if path == "/3.0/batches" and method == "GET":
            host = request.headers.get("host", "")
            batches = [self.view(job, host) for job in self.vendor.jobs.values() if job.kind == "batch"]
            return FakeResponse.json(200, {"batches": batches, "total_items": len(batches)})
        found = re.fullmatch(r"/3\.0/batches/([^/]+)", path)
        if found and method == "GET":
            job = self.vendor.jobs.get(found.group(1))
            if job is None or job.kind != "batch":
                return self.problem(404, "Resource Not Found", "The requested resource could not be found.")
            return FakeResponse.json(200, self.view(self.vendor.poll(job), request.headers.get("host", "")))
        return self.problem(
            405, "Method Not Allowed", f"The requested method and resource are not compatible: {method}."
        )

    def _start(self, request: FakeRequest) -> FakeResponse:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError):
            return self.problem(400, "JSON Parse Exception", "the request body is not valid JSON")
        operations = body.get("operations") if isinstance(body, dict) else None
        if not isinstance(operations, list) or not operations:
            return self._invalid("operations", "This value should not be blank.")
        for index, operation in enumerate(operations):  # the batch is refused whole, before it is queued
            problem = _operation_problem(operation)
            if problem is not None:
                return self._invalid(f"operations.{index}.{problem[0]}", problem[1])
        keys = [str(operation.get("operation_id", "")) for operation in operations]
        number = len(self.vendor.jobs) + 1
        job = self.vendor.start_job("batch", keys, lambda job: self._run(job, operations), job_id=f"{number:010x}")
        return FakeResponse.json(200, self.view(job, request.headers.get("host", "")))

    def _run(self, job: Job, operations: list[dict[str, Any]]) -> list[ItemError]:
        """Answer every operation in order; the errored ones are the job's errors."""
        results, errors = [], []
        for index, operation in enumerate(operations):
            answer = self._answer(operation)
            results.append({"status_code": answer.status, "operation_id": operation.get("operation_id"),
                            "response": answer.body.decode("utf-8")})  # fmt: skip
            if answer.status >= 400:
                errors.append(ItemError(index, str(operation.get("operation_id", "")), answer.body.decode("utf-8")))
        job.meta["results"] = results
        return errors

    def _answer(self, operation: dict[str, Any]) -> FakeResponse:
        body = operation.get("body")
        path = "/3.0" + str(operation["path"])
        params = {str(k): str(v) for k, v in (operation.get("params") or {}).items()}
        request = FakeRequest(operation["method"], path, path, params, {}, str(body or "").encode("utf-8"))
        try:
            return self.route(request)
        except Reject as rejection:
            return rejection.response

    def _invalid(self, field: str, message: str) -> FakeResponse:
        detail = "The resource submitted could not be validated. For field-specific details, see the 'errors' array."
        return self.problem(400, "Invalid Resource", detail, [{"field": field, "message": message}])

    def view(self, job: Job, host: str) -> dict[str, Any]:
        """The batch as ``GET /3.0/batches/{id}`` shows it now."""
        finished = job.done
        errored = len(job.errors) if finished else 0
        return {
            "id": job.id,
            "status": "finished" if finished else self.vendor.running_state(job, STATES),
            "total_operations": job.total,
            "finished_operations": job.total if finished else 0,
            "errored_operations": errored,
            "submitted_at": iso(job.created),
            "completed_at": iso(job.finished) if job.finished is not None else "",
            "response_body_url": f"http://{host or 'mailchimp-api-batch.s3.amazonaws.com'}{RESULTS_PATH}{job.id}"
            "-response.tar.gz"
            if finished
            else "",
        }

    def _results(self, name: str) -> FakeResponse:
        job = self.vendor.jobs.get(name.removesuffix("-response.tar.gz"))
        if job is None or not job.done or job.kind != "batch":
            return FakeResponse(404, b"<Error><Code>NoSuchKey</Code></Error>", {"Content-Type": "application/xml"})
        results = job.meta.get("results")
        if results is None:  # the job failed whole (fault hook): every operation errored
            detail = json.dumps({"title": "Internal Server Error", "status": 500, "detail": job.failure})
            results = [{"status_code": 500, "operation_id": key, "response": detail} for key in job.keys]
        return FakeResponse(200, archive(job.id, results), {"Content-Type": "application/x-tar"})


def archive(batch_id: str, results: list[dict[str, Any]]) -> bytes:
    """``results`` as a gzipped tar of JSON files, at most RESULTS_PER_FILE results each."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for number, start in enumerate(range(0, max(len(results), 1), RESULTS_PER_FILE)):
            data = json.dumps(results[start : start + RESULTS_PER_FILE]).encode()
            member = tarfile.TarInfo(f"{batch_id}-response/{number}.json")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def _operation_problem(operation: Any) -> tuple[str, str] | None:
    if not isinstance(operation, dict):
        return "", "Schema describes object, array found instead"
    if operation.get("method") not in METHODS:
        return "method", f"Value must be one of: {', '.join(sorted(METHODS))}"
    if not isinstance(operation.get("path"), str) or not operation["path"]:
        return "path", "This value should not be blank."
    if "body" in operation and not isinstance(operation["body"], str):
        return "body", "Schema describes string, object found instead"
    if "params" in operation and not isinstance(operation["params"], dict):
        return "params", "Schema describes object"
    return None
