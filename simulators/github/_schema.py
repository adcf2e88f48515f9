"""Checking GraphQL documents against GitHub's public schema, as GitHub does before it runs one.

The schema (octokit/graphql-schema, shipped with the tests in `tests/data/`) is 1.2 MB and takes
most of a second to build, so it is built once per process, on the first GraphQL request any
simulator receives. graphql-core is a development dependency: without it, or without the
schema file (an installed package, the Docker image), documents are answered unchecked.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphql import GraphQLError, GraphQLSchema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "tests" / "data" / "github-schema.graphql"

_log = logging.getLogger(__name__)
_lock = threading.Lock()
# path → the schema built from it, or None when it cannot be (no file or no graphql-core).
_schemas: dict[Path, GraphQLSchema | None] = {}
# graphql-core's wording → graphql-ruby's (GitHub's) for the mistake a client makes most.
_UNDEFINED_FIELD = re.compile(r"^Cannot query field '(?P<field>[^']+)' on type '(?P<type>[^']+)'\.")


def load_schema(path: Path = SCHEMA_PATH) -> GraphQLSchema | None:
    """GitHub's schema built from `path`, once per process; None (logged once) if unavailable."""
    with _lock:
        if path not in _schemas:
            _schemas[path] = _build(path)
        return _schemas[path]


def _build(path: Path) -> GraphQLSchema | None:
    try:
        from graphql import build_schema
    except ImportError:
        _log.warning("graphql-core is not installed: GraphQL documents are not checked")
        return None
    if not path.is_file():
        _log.warning("no GitHub schema at %s: GraphQL documents are not checked", path)
        return None
    # assume_valid_sdl: the published SDL repeats some fields, which GitHub tolerates;
    # assume_valid: it also breaks interface deprecation rules that `validate` would assert.
    return build_schema(path.read_text(), assume_valid_sdl=True, assume_valid=True)


def document_errors(
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    path: Path = SCHEMA_PATH,
) -> list[dict[str, Any]]:
    """The `errors` GitHub answers for a document that does not parse, does not validate against
    its schema, or is sent variables its operation does not accept; empty when it is fine (or
    when there is no schema to check with)."""
    schema = load_schema(path)
    if schema is None:
        return []
    from graphql import GraphQLError, get_operation_ast, parse, validate
    from graphql.execution.values import get_variable_values

    try:
        document = parse(query)
    except GraphQLError as error:
        return [_github_error(error)]
    errors = validate(schema, document)
    if errors:
        return [_github_error(error) for error in errors]
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        unknown = f'Unknown operation named "{operation_name}"'
        return [{"message": unknown if operation_name else "An operation name is required"}]
    definitions = operation.variable_definitions or ()
    coerced = get_variable_values(schema, definitions, variables or {})
    if isinstance(coerced, list):
        return [_github_error(error) for error in coerced]
    return []


def _github_error(error: GraphQLError) -> dict[str, Any]:
    """One graphql-core error as GitHub words it: `message`, `locations`, and for an unknown
    field graphql-ruby's message and `extensions`."""
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [
            {"line": location.line, "column": location.column} for location in error.locations
        ]
    undefined = _UNDEFINED_FIELD.match(error.message)
    if undefined:
        field, type_name = undefined["field"], undefined["type"]
        formatted["message"] = f"Field '{field}' doesn't exist on type '{type_name}'"
        formatted["extensions"] = {
            "code": "undefinedField",
            "typeName": type_name,
            "fieldName": field,
        }
    return formatted
