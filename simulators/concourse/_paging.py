"""Concourse's paging of build and version listings: `from`, `to`, `limit` and the ids of the
neighbouring pages that the `Link` headers point at."""

from __future__ import annotations

from collections.abc import Iterable

from simulators._http import Request
from simulators.concourse._model import DEFAULT_LIMIT, Build, Version


def page_params(request: Request) -> tuple[int | None, int | None, int]:
    """(from, to, limit) of a paged listing; limit 0 or missing means the default 100.

    Like the server's `strconv.Atoi` with its error ignored, a malformed value counts as 0.
    """

    def number(name: str) -> int:
        try:
            return int(request.arg(name) or 0)
        except ValueError:
            return 0

    limit = number("limit")
    return number("from") or None, number("to") or None, limit if limit > 0 else DEFAULT_LIMIT


def paginate_builds(
    builds: Iterable[Build], from_id: int | None, to_id: int | None, limit: int
) -> tuple[list[Build], int | None, int | None]:
    """Concourse's `getBuildsWithPagination`: (page, `to` of the older page, `from` of newer)."""
    descending = sorted(builds, key=lambda b: b.sort_key, reverse=True)
    ascending = descending[::-1]
    if from_id is None and to_id is None:
        page = descending[:limit]
    elif to_id is None:
        # Only `from`: the `limit` builds closest above it, then returned newest first.
        page = [b for b in ascending if from_id is not None and b.id >= from_id][:limit][::-1]
    elif from_id is None:
        page = [b for b in descending if b.id <= to_id][:limit]
    else:
        # Both: ascending, and (as upstream) not reversed.
        page = [b for b in ascending if from_id <= b.id <= to_id][:limit]
    if not page:
        return [], None, None
    newest, oldest = page[0], page[-1]
    older = next((b.id for b in descending if b.id < oldest.id), None)
    newer = next((b.id for b in ascending if b.id > newest.id), None)
    return page, older, newer


def paginate_versions(
    versions: list[Version],
    wanted: dict[str, str],
    from_id: int | None,
    to_id: int | None,
    limit: int,
) -> tuple[list[Version], int | None, int | None]:
    """Concourse's `resource.Versions`: newest check first; `from` wins over `to`."""
    by_id = {v.id: v for v in versions}
    descending = sorted(versions, key=lambda v: v.check_order, reverse=True)
    matching = [v for v in descending if all(v.version.get(k) == x for k, x in wanted.items())]
    if from_id is not None:
        anchor = by_id.get(from_id)
        above = [v for v in matching[::-1] if anchor and v.check_order >= anchor.check_order]
        page = above[:limit][::-1]
    elif to_id is not None:
        anchor = by_id.get(to_id)
        page = [v for v in matching if anchor and v.check_order <= anchor.check_order][:limit]
    else:
        page = matching[:limit]
    if not page:
        return [], None, None
    # The neighbour queries upstream ignore the filter; so do these.
    older = next((v.id for v in descending if v.check_order < page[-1].check_order), None)
    newer = next((v.id for v in descending[::-1] if v.check_order > page[0].check_order), None)
    return page, older, newer
