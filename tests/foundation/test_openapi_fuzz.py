"""The OpenAPI document tells the truth: schemathesis against the app, logged in as an admin.

A client generated from ``/openapi.json`` must know every status, content type and rule the server
answers with. Schemathesis generates requests from the document (its examples, coverage and fuzzing
phases) and runs all of its checks on every answer: no server error, every status and content type
declared, bodies and headers as documented, schema-valid input accepted, invalid input refused,
unsupported methods answered 405 with a correct ``Allow``.

The database is the one ``jiaoying serve`` starts on (departments, feeds, the default region and its
demo contacts), so paths that name a seeded row reach the handler's real work, not only its 404.
Examples are bounded and derandomized, so the run is the same every time and stays well under two minutes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.python.asgi import shutdown_lifespans

from config.database import session_scope
from config.fields import PHONE_RE
from config.runtime import Runtime
from geo.region import seed_default_region
from responses.contacts.core import PhoneError, normalize_phone
from responses.contacts.service import seed_demo_contacts
from warning.service import seed_feeds

SEED = 140502  # the district's code: any fixed number makes the run repeatable
MAX_EXAMPLES = 8  # per operation in the fuzzing phase; the examples and coverage phases add their own


def _unknown_reference(err: dict[str, Any]) -> bool:
    return str(err.get("message_en", "")).startswith("unknown")


def _shift_order(err: dict[str, Any]) -> bool:
    return all("ends_at must be after starts_at" in str(d.get("msg")) for d in err.get("details") or [{}])


# Rules the document states in words because JSON Schema cannot: what a file or a plan document must contain,
# which rows a reference must name (data, not schema), that a polygon must not cross itself, that a shift ends
# after it starts, and which times a duty log takes. A schema-valid request refused by one of them, in its
# documented status and shape, is the server keeping its word; every other refusal of a schema-valid request
# fails the test.
RULES_IN_WORDS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "POST /contacts/import": lambda e: e["code"] in ("bad_file", "import_rejected"),
    "POST /responses/roster/import": lambda e: e["code"] == "bad_roster_file",
    "POST /geo/import/{kind}": lambda e: e["code"] in ("import_rejected", "bad_file", "unsupported"),
    "PUT /responses/plans/{hazard}": lambda e: e["code"] == "invalid_plan",
    "POST /contacts": lambda e: e["code"] == "bad_duty" and _unknown_reference(e),
    "POST /contacts/{contact_id}/duties": lambda e: e["code"] == "bad_duty" and _unknown_reference(e),
    "POST /geo/match": lambda e: e["code"] in ("bad_geometry", "bad_target"),
    "POST /warnings/manual": lambda e: e["code"] == "invalid_area",
    "POST /responses/roster/shifts": lambda e: e["code"] == "validation_error" and _shift_order(e),
    "PUT /responses/roster/shifts/{shift_id}": lambda e: (e["code"] == "validation_error" and _shift_order(e))
    or e["code"] in ("shift_ended", "shift_started", "start_in_past", "end_in_past", "shift_overlap"),
    # a log entry is back-dated within its shift only; a log view is one shift, one day or one from/to window
    "POST /duty/log": lambda e: e["code"] == "time_out_of_range",
    "GET /duty/log": lambda e: e["code"] == "bad_window",
    "GET /duty/log.xlsx": lambda e: e["code"] == "bad_window",
    "GET /duty/log.html": lambda e: e["code"] == "bad_window",
}


def filter_failure(_ctx: Any, failure: Any, case: schemathesis.Case, response: schemathesis.Response) -> bool:
    """Keep every failure but a refusal, by a rule stated only in words, of a schema-valid request."""
    rule = RULES_IN_WORDS.get(case.operation.label)
    if rule is None or not isinstance(failure, RejectedPositiveData):
        return True
    try:
        err = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        return True
    return not rule(err)


_counts: dict[str, int] = {"cases": 0}


@pytest.fixture
def admin_headers(login: Callable[..., dict[str, str]]) -> dict[str, str]:
    return login("admin")


@pytest.fixture
def api_schema(client: TestClient, sqlite_runtime: Runtime,
               admin_headers: dict[str, str]) -> Iterator[schemathesis.BaseSchema]:
    now = dt.datetime.now(dt.UTC)
    with session_scope(sqlite_runtime.session_factory) as s:
        seed_feeds(s, now)
        seed_default_region(s, now)
        seed_demo_contacts(s, now=now, tz=sqlite_runtime.settings.tz)
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    schema.config.seed = SEED
    schema.hook(filter_failure)
    yield schema
    shutdown_lifespans()  # the lifespan schemathesis started for this app, before its database goes away


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_openapi_document_tells_the_truth(case: schemathesis.Case, admin_headers: dict[str, str]) -> None:
    _counts["cases"] += 1
    case.call_and_validate(headers=admin_headers)


def test_zz_fuzz_request_count() -> None:
    """Prints how many requests the fuzz test generated (shown with ``-s``); runs after it in this module."""
    print(f"\nschemathesis cases: {_counts['cases']}")


# --------------------------------------------------------------------------- the phone pattern


def _accepted(number: str) -> bool:
    try:
        normalize_phone(number)
    except PhoneError:
        return False
    return True


@settings(max_examples=300, derandomize=True, database=None)
@given(st.from_regex(PHONE_RE, fullmatch=True))
def test_every_number_the_phone_pattern_allows_is_accepted(number: str) -> None:
    assert _accepted(number), number


_SEPARATORS = ["", "", "", " ", "-", "(", ")", "（", "）", "."]
_PARTS = st.lists(st.tuples(st.sampled_from(list("0123456789+")), st.sampled_from(_SEPARATORS)),
                  min_size=1, max_size=22)


@settings(max_examples=600, derandomize=True, database=None)
@given(st.sampled_from(["", "+86", "0086", "86", "+", "00", "+1", "+44", "0"]), _PARTS)
def test_the_phone_pattern_is_what_the_server_accepts(prefix: str, parts: list[tuple[str, str]]) -> None:
    number = prefix + "".join(a + b for a, b in parts)
    assert bool(PHONE_RE.match(number)) == _accepted(number), number
