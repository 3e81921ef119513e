"""The client against the server's OpenAPI document: every operation the client calls exists there,
with the same request fields and required fields, known query parameters, the success status the
client expects, and answer fields the response schema declares (where it declares any). A drift on
either side fails here, before an integrator meets it as a 422 or a missing field."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, create_model

from api.app import create_app
from core.settings import load_settings
from tarcza_client import models
from tarcza_client.operations import OPERATIONS, Operation

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# Creating operations whose route does not declare an ``Idempotency-Key`` header parameter yet (the
# client sends one all the same). Remove an entry when its route declares the header: the test
# below fails while an entry here is declared after all, so this list only shrinks.
IDEMPOTENCY_KEY_UNDECLARED: frozenset[str] = frozenset()


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The OpenAPI document of the app as the server builds it (no database needed)."""
    data_dir: Path = tmp_path_factory.mktemp("var")
    return create_app(load_settings(data_dir=data_dir)).openapi()


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with ``$ref`` followed and a nullable ``anyOf: [X, null]`` narrowed to X."""
    while True:
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
            continue
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if "anyOf" in schema and len(options) == 1:
            schema = options[0]
            continue
        return schema


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``X | None`` or ``list[X]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        for arg in typing.get_args(annotation):
            found = nested_model(arg)
            if found is not None:
                return found
    return None


def object_schema(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(doc, schema)
    return resolve(doc, schema["items"]) if schema.get("type") == "array" else schema


def compare_request(doc: dict[str, Any], model: type[BaseModel], schema: dict[str, Any], where: str,
                    omitted: tuple[str, ...] = ()) -> list[str]:
    """Differences between a request model and a request schema: field names and required fields."""
    schema = resolve(doc, schema)
    properties = schema.get("properties", {})
    fields = model.model_fields
    out: list[str] = []
    names, expected = set(fields), set(properties) - set(omitted)
    if names != expected:
        out.append(f"{where}: client sends {sorted(names - expected)} unknown to the server; "
                   f"the server knows {sorted(expected - names)} the client lacks")
    required = {n for n, f in fields.items() if f.is_required()}
    server_required = set(schema.get("required", [])) - set(omitted)
    if required != server_required:
        out.append(f"{where}: required fields differ: client {sorted(required)}, server {sorted(server_required)}")
    for name, info in fields.items():
        inner = nested_model(info.annotation)
        if inner is not None and name in properties:
            out += compare_request(doc, inner, object_schema(doc, properties[name]), f"{where}.{name}")
    return out


def compare_answer(doc: dict[str, Any], model: type[BaseModel], schema: dict[str, Any], where: str) -> list[str]:
    """Fields of an answer model missing from a response schema that declares its properties."""
    schema = resolve(doc, schema)
    properties = schema.get("properties")
    if properties is None:  # a free-form object: nothing declared to compare with
        return []
    out = [f"{where}: the client reads {name!r}, which the response schema does not declare"
           for name in model.model_fields if name not in properties]
    for name, info in model.model_fields.items():
        inner = nested_model(info.annotation)
        if inner is not None and name in properties:
            out += compare_answer(doc, inner, object_schema(doc, properties[name]), f"{where}.{name}")
    return out


def drift(doc: dict[str, Any], op: Operation) -> list[str]:
    """Everything about ``op`` that the document contradicts."""
    where = f"{op.name} ({op.method} {op.path})"
    operation = doc["paths"].get(op.path, {}).get(op.method.lower())
    if operation is None:
        return [f"{where}: no such operation in the OpenAPI document"]
    out: list[str] = []
    parameters = operation.get("parameters", [])
    by_place: dict[str, set[str]] = {}
    for p in parameters:
        by_place.setdefault(p["in"], set()).add(p["name"].lower() if p["in"] == "header" else p["name"])
    path_names = set(re.findall(r"{(\w+)}", op.path))
    if path_names != by_place.get("path", set()):
        out.append(f"{where}: path parameters {sorted(path_names)} vs {sorted(by_place.get('path', set()))}")
    unknown_query = set(op.query) - by_place.get("query", set())
    if unknown_query:
        out.append(f"{where}: query parameters {sorted(unknown_query)} are not in the document")
    declares_key = "idempotency-key" in by_place.get("header", set())
    if op.creates and not declares_key and op.name not in IDEMPOTENCY_KEY_UNDECLARED:
        out.append(f"{where}: a creating operation whose route does not declare Idempotency-Key")
    if op.name in IDEMPOTENCY_KEY_UNDECLARED and declares_key:
        out.append(f"{where}: now declares Idempotency-Key; remove it from IDEMPOTENCY_KEY_UNDECLARED")

    body = operation.get("requestBody", {}).get("content", {})
    if op.body == "json" and op.request is not None:
        if JSON not in body:
            out.append(f"{where}: the server takes no JSON body")
        else:
            out += compare_request(doc, op.request, body[JSON]["schema"], where, op.omitted)
    elif op.body == "form" and op.request is not None:
        if FORM not in body:
            out.append(f"{where}: the server takes no form body")
        else:
            out += compare_request(doc, op.request, body[FORM]["schema"], where, op.omitted)
    elif op.body == "binary":
        if not body or JSON in body:
            out.append(f"{where}: the server does not document a raw (binary) body")
    elif body and operation["requestBody"].get("required"):
        out.append(f"{where}: the server requires a body the client does not send")

    response = operation.get("responses", {}).get(str(op.status))
    if response is None:
        out.append(f"{where}: success status {op.status} is not documented "
                   f"(documented: {sorted(operation.get('responses', {}))})")
        return out
    content = response.get("content", {})
    if op.media == "json":
        if JSON not in content:
            out.append(f"{where}: the success answer is not documented as JSON")
        elif op.answer is not None:
            out += compare_answer(doc, op.answer, content[JSON].get("schema", {}), where)
    elif op.media == "text" and not any(t.startswith("text/") for t in content):
        out.append(f"{where}: the success answer is not documented as text")
    elif op.media == "binary" and op.status != 204 and not any(t != JSON for t in content):
        out.append(f"{where}: the success answer is not documented as a binary download")
    return out


class TestClientMatchesOpenApi:
    def test_every_operation_matches_the_document(self, document: dict[str, Any]) -> None:
        """Each operation the client calls exists with the client's fields, query, body kind and status."""
        problems = [p for op in OPERATIONS for p in drift(document, op)]
        assert problems == [], "\n".join(problems)

    def test_the_client_calls_only_listed_operations(self) -> None:
        """The operation table lists every operation, with no two alike (names and method+path)."""
        assert len(OPERATIONS) >= 25
        assert len({op.name for op in OPERATIONS}) == len(OPERATIONS)
        assert len({(op.method, op.path) for op in OPERATIONS}) == len(OPERATIONS)

    def test_a_renamed_request_field_is_detected(self, document: dict[str, Any]) -> None:
        """A request model with a field the server does not know, or missing a required one, is reported."""
        schema = document["paths"]["/v1/debts"]["post"]["requestBody"]["content"][JSON]["schema"]
        fields: dict[str, Any] = {n: (f.annotation, f) for n, f in models.Debt.model_fields.items()
                                  if n != "creditor"}
        renamed = create_model("RenamedDebt", __base__=models.RequestModel, creditor_name=(str, ...), **fields)
        problems = compare_request(document, renamed, schema, "debt")
        assert any("creditor_name" in p and "creditor" in p for p in problems), problems
        assert any("required fields differ" in p for p in problems), problems

    def test_an_answer_field_missing_from_a_declared_schema_is_detected(self, document: dict[str, Any]) -> None:
        """Where a response schema declares properties, an answer field it lacks is reported (nested too)."""
        schema = {"type": "object", "properties": {"results": {"type": "array", "items": {
            "type": "object", "properties": {"receipt": {"type": "object", "properties": {"event_id": {}}}}}}}}
        problems = compare_answer(document, models.BatchResults, schema, "batch")
        assert "batch.results: the client reads 'error', which the response schema does not declare" in problems
        assert any(p.startswith("batch.results.receipt: the client reads 'index'") for p in problems), problems
