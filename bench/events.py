"""Deterministic sample events: a mixed stream over every mapping row, with realistic sizes.

Two streams: the default one names 2,000 contacts again and again (as a real site does, so
caches keyed by email are warm), and ``distinct=TAG`` gives every event an email never seen
before (the same events otherwise), so nothing keyed by email can be cached.

``python -m bench.events --count N`` writes N events as NDJSON to stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from typing import Any

FIRST = ["Jane", "Sam", "Zoë", "Ari", "Noor", "Luis", "Mei", "Kim", "Olu", "Ines", "Tomás", "Yuki"]
LAST = ["Doe", "Lee", "Ünal", "Park", "Haddad", "García", "Chen", "Berg", "Adeyemi", "Silva", "Novák", "Sato"]
PLANS = ["free", "pro", "team", "enterprise"]
CONSENT = [True, True, False, None]


def _context(rng: random.Random, email: str | None, consent: bool | None, index: int) -> dict[str, Any]:
    context: dict[str, Any] = {
        "page": {
            "url": f"https://shop.example.com/p/{index % 97}?ref=nav",
            "path": f"/p/{index % 97}",
            "referrer": "https://www.example.org/",
            "title": "Product page",
        },
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126 Safari/537.36",
        "locale": "en-GB",
        "ip": f"203.0.113.{index % 250}",
        "campaign": {"source": "newsletter", "medium": "email", "name": f"nov-{index % 5}"},
    }
    if email is not None:
        context["traits"] = {"email": email}
    if consent is not None:
        context["consent"] = {
            "canonical": {"marketing": consent, "analytics": True, "essential": True},
            "categories": {"C0002": True, "C0004": consent},
        }
    return context


def generate(
    count: int, *, contacts: int = 2000, seed: int = 42, distinct: str | None = None
) -> Iterator[dict[str, Any]]:
    """Identify, Signed Up, Identified, Order Completed, Subscribed, Unsubscribed, pages and drops.

    ``distinct``: a tag that makes every email new (``jane.TAG0000042@example.com``); give each
    stream its own tag. Everything else is the same as the stream without it.
    """
    rng = random.Random(seed)
    for index in range(count):
        person = rng.randrange(contacts)
        first, last = FIRST[person % len(FIRST)], LAST[person % len(LAST)]
        mailbox = f"{distinct}{index:07d}" if distinct is not None else str(person)
        email = f"{first.lower()}.{mailbox}@example.com".replace("ë", "e").replace("á", "a")
        consent = CONSENT[rng.randrange(len(CONSENT))]
        base = {
            "anonymousId": f"anon-{person:06d}",
            "messageId": f"msg-{index:09d}",
            "timestamp": f"2026-11-23T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}Z",
        }
        kind = rng.randrange(100)
        if kind < 25:
            event = {
                "type": "identify",
                "userId": f"user-{person}",
                **base,
                "traits": {
                    "email": email.upper() if person % 7 == 0 else email,
                    "first_name": first,
                    "last_name": last,
                    "name": f"{first} {last}",
                    "plan": PLANS[person % 4],
                    "company": f"Company {person % 50}",
                    "title": "Buyer",
                    "phone": "+441632960000",
                },
                "context": _context(rng, None, consent, index),
            }
        elif kind < 40:
            event = {
                "type": "page",
                "name": "Product",
                **base,
                "properties": {"url": "https://shop.example.com/p"},
                "context": _context(rng, email if kind < 33 else None, consent, index),
            }
        elif kind < 55:
            event = {
                "type": "track",
                "event": "Order Completed",
                **base,
                "properties": {
                    "order_id": f"ORD-{index}",
                    "revenue": f"{(index % 500) + 0.99:.2f}",
                    "currency": "eur",
                    "products": [{"sku": f"SKU-{index % 30}", "price": 9.99}],
                },
                "context": _context(rng, email, consent, index),
            }
        elif kind < 70:
            event = {
                "type": "track",
                "event": "Signed Up",
                **base,
                "properties": {"method": "google"},
                "context": _context(rng, email, consent, index),
            }
        elif kind < 78:
            event = {
                "type": "track",
                "event": "Identified",
                **base,
                "properties": {},
                "context": {
                    **_context(rng, None, consent, index),
                    "traits": {"email": email, "first_name": first, "last_name": last},
                },
            }
        elif kind < 85:
            event = {
                "type": "track",
                "event": "Subscribed",
                **base,
                "properties": {},
                "context": _context(rng, email, consent, index),
            }
        elif kind < 92:
            event = {
                "type": "track",
                "event": "Unsubscribed",
                **base,
                "properties": {},
                "context": _context(rng, email, consent, index),
            }
        elif kind < 96:
            event = {
                "type": "track",
                "event": "Product Viewed",
                **base,
                "properties": {"sku": "SKU-1"},
                "context": _context(rng, email, consent, index),
            }
        else:
            event = {
                "type": "track",
                "event": "Signed Up",
                **base,
                "properties": {"method": "email"},
                "context": _context(rng, "not-an-email" if kind < 98 else None, consent, index),
            }
        yield event


def stored_member(event: dict[str, Any], index: int) -> dict[str, Any] | None:
    """What a read-before-write lookup answers for the ``index``-th event: a stored member with a
    status and vars of its own three times in four, nothing yet (a 404) the fourth."""
    if index % 4 == 0:
        return None
    return {
        "member": {
            "address": "stored@example.com",
            "name": "Stored Name",
            "subscribed": index % 3 != 0,
            "vars": {
                "anonymous_id": event.get("anonymousId"),
                "plan": PLANS[index % 4],
                "company": "Acme Ltd",
                "last_page_url": "https://shop.example.com/",
                "signup_method": "google",
            },
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    out = sys.stdout
    for event in generate(args.count, seed=args.seed):
        out.write(json.dumps(event, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
