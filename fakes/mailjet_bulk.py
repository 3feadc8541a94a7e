"""Mailjet's bulk contact management, faithfully: an asynchronous job per request.

``POST /v3/REST/contactslist/{id}/managemanycontacts`` (and ``/contact/managemanycontacts``
with ``ContactsLists``) checks the envelope at once (400 or 404 as for managecontact) and
answers 201 with a ``JobID``; nothing is written yet. The job then moves through
``Allocated``, ``Upload``, ``Prepare`` and ``Importing``, one status per read of
``GET .../managemanycontacts/{JobID}`` (``polls_to_finish`` reads in all), and ends
``Completed`` or, when some contacts were refused, ``Error``: only then are the contacts
written, those that passed. The refused ones, with why, are at
``GET /v3/DATA/batchjob/{JobID}/JSONError/application:json/LAST``.

Documented (dev.mailjet.com guides, "Manage contacts in bulk"): the routes, the JobID
answer, the status names, ``Count``, ``Error`` and ``ErrorFile``, the error file's
route, upsert by email, and ``null`` unsetting a property. Not documented, so
approximated here: the error file's entries (each refused contact as sent, plus
``Error``, its reason), the status while a job runs, and the size limit: Mailjet
publishes none; users report 10,000 contacts per call working and 50,000 resetting the
connection (mailjet-apiv3-nodejs#292), so above ``max_contacts`` the fake drops the
connection.
"""

from __future__ import annotations

import datetime
from itertools import count
from typing import Any

from .server import FakeResponse

__all__ = ["JOB_STATES", "BulkJobs"]

#: The statuses a job passes through before it ends (Mailjet's guide names them).
JOB_STATES = ("Allocated", "Upload", "Prepare", "Importing")
#: More contacts than this in one call: the connection is dropped (observed at 50,000).
MAX_CONTACTS = 10_000


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BulkJobs:
    """The jobs of one fake Mailjet account. ``apply(contact, targets)`` writes one contact;
    ``problems(contact)`` says why one would be refused (an empty mapping: it is fine)."""

    def __init__(
        self, apply: Any, problems: Any, *, polls_to_finish: int = 3, max_contacts: int = MAX_CONTACTS
    ) -> None:
        self._apply = apply
        self._problems = problems
        self.polls_to_finish = polls_to_finish
        self.max_contacts = max_contacts
        self.jobs: dict[int, dict[str, Any]] = {}
        self._ids = count(35800)
        #: Every bulk request accepted, in order: (JobID, number of contacts).
        self.submitted: list[tuple[int, int]] = []

    def submit(self, contacts: list[Any], targets: list[tuple[int, str]]) -> FakeResponse | None:
        """A job for ``contacts``; None (drop the connection) past ``max_contacts``."""
        if len(contacts) > self.max_contacts:
            return None
        job_id = next(self._ids)
        self.jobs[job_id] = {
            "contacts": contacts,
            "targets": targets,
            "polls": 0,
            "status": JOB_STATES[0],
            "start": _now(),
            "end": "",
            "errors": [],
        }
        self.submitted.append((job_id, len(contacts)))
        return FakeResponse.json(201, {"Count": 1, "Data": [{"JobID": job_id}], "Total": 1})

    def status(self, job_id: int) -> dict[str, Any] | None:
        """The job's status row (one read moves a running job on), or None for an unknown job."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        if job["status"] in JOB_STATES:
            job["polls"] += 1
            if job["polls"] >= self.polls_to_finish:
                self._finish(job)
            else:
                job["status"] = JOB_STATES[min(job["polls"], len(JOB_STATES) - 1)]
        done = job["status"] not in JOB_STATES
        processed = len(job["contacts"]) if done else len(job["contacts"]) * job["polls"] // self.polls_to_finish
        error = f"{len(job['errors'])} contacts could not be imported" if job["errors"] else ""
        return {
            "Count": processed,
            "Error": error,
            "ErrorFile": f"DATA/batchjob/{job_id}/JSONError/application:json/LAST" if job["errors"] else "",
            "JobEnd": job["end"],
            "JobStart": job["start"],
            "Status": job["status"],
        }

    def finish_all(self) -> None:
        """Let every running job end, as Mailjet's workers do whether anyone polls or not."""
        for job in self.jobs.values():
            if job["status"] in JOB_STATES:
                self._finish(job)

    def errors(self, job_id: int) -> list[dict[str, Any]] | None:
        """The error file: each refused contact as sent, with ``Error``; None before the job ends."""
        job = self.jobs.get(job_id)
        if job is None or job["status"] in JOB_STATES:
            return None
        return [dict(entry) for entry in job["errors"]]

    def _finish(self, job: dict[str, Any]) -> None:
        for contact in job["contacts"]:
            problems = self._problems(contact if isinstance(contact, dict) else {})
            if problems:
                entry = dict(contact) if isinstance(contact, dict) else {"Email": contact}
                entry["Error"] = _reason(problems)
                job["errors"].append(entry)
                continue
            self._apply(contact, job["targets"])
        job["status"] = "Error" if job["errors"] else "Completed"
        job["end"] = _now()


def _reason(problems: dict[str, Any]) -> str:
    """One line, as Mailjet words it for managecontact (``ErrorInfo``), field by field."""
    parts = []
    for field, problem in problems.items():
        if field == "_unknown":
            parts.append(f"unknown fields: {', '.join(problem)}")
        elif isinstance(problem, list):
            parts.extend(f"{name}: {why}" for entry in problem for name, why in entry.items())
        else:
            parts.append(f"{field}: {problem}")
    return "; ".join(parts)
