"""Relevance commands: ``rank``, ``feedback`` (👍/👎 for a profile), ``explain`` (a score's parts).

``rank`` imports no more than ranking needs (no templates, Slack or delivery), so its
start-up stays small on a 100,000-paper store.
"""

from __future__ import annotations

import click

from digestbot.cli import (
    AppContext,
    handle_errors,
    pass_app,
    print_json,
    print_json_text,
    progress_bar,
)
from digestbot.errors import ConfigError, NotFoundError
from digestbot.models import scored_as_dict
from digestbot.ranking.explain import breakdown, matched_labels, why
from digestbot.ranking.persist import default_index_dir
from digestbot.ranking.service import open_index, rank_listing, rank_store, score_store
from digestbot.store.feedback import record_feedback
from digestbot.store.ranking import load_texts, pks_of_ids


@click.command()
@click.option("--profile", "profile_name", required=True, help="Profile name.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the best N.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handle_errors
def rank(app: AppContext, profile_name: str, limit: int | None, as_json: bool) -> None:
    """Rank every stored paper for a profile, best first."""
    profile = app.settings.profile(profile_name)
    settings = app.settings.ranking
    index_dir = settings.index_dir or default_index_dir(app.store)
    if limit is None:  # every paper: as columns, without one object per paper
        listed = rank_listing(
            app.store, profile, now=app.now(), settings=settings, index_dir=index_dir
        )
        if as_json:
            print_json_text(listed.as_json())
            return
        for pid, title, score, text in zip(
            listed.ids, listed.titles, listed.scores, listed.whys, strict=True
        ):
            click.echo(f"{score:8.3f}  {pid:<16} {title}")
            click.echo(f"          {text}")
        return
    ranked = rank_store(
        app.store, profile, now=app.now(), settings=settings, index_dir=index_dir, limit=limit
    )
    if as_json:
        print_json([scored_as_dict(item) for item in ranked])
        return
    for item in ranked:
        click.echo(f"{item.score:8.3f}  {item.paper.id:<16} {item.paper.title}")
        click.echo(f"          {item.why}")


@click.command()
@click.option("--profile", "profile_name", required=True, help="Profile name.")
@click.argument("paper_id")
@click.argument("vote", type=click.Choice(["up", "down"]))
@pass_app
@handle_errors
def feedback(app: AppContext, profile_name: str, paper_id: str, vote: str) -> None:
    """Record 👍 (up) or 👎 (down) on a paper for a profile; a new vote replaces the old one."""
    profile = app.settings.profile(profile_name)
    recorded = record_feedback(
        app.store,
        subject_kind="profile",
        subject=profile.name,
        paper_id=paper_id,
        value=1 if vote == "up" else -1,
        source="cli",
        now=app.now(),
    )
    mark = "👍" if recorded.value > 0 else "👎"
    click.echo(f"{mark} {recorded.paper_id} recorded for profile {profile.name}")


@click.command()
@click.option("--profile", "profile_name", required=True, help="Profile name.")
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handle_errors
def explain(app: AppContext, profile_name: str, paper_id: str, as_json: bool) -> None:
    """Show how a paper's score for a profile is made up."""
    profile = app.settings.profile(profile_name)
    settings = app.settings.ranking
    paper = app.store.get_paper(paper_id)
    index = open_index(app.store, settings.index_dir or default_index_dir(app.store))
    scores, row_of, liked_rows = score_store(
        app.store, index, profile, now=app.now(), settings=settings
    )
    pk = pks_of_ids(app.store, [paper.id]).get(paper.id)
    if pk is None or pk not in row_of:
        raise NotFoundError("paper", paper_id)
    row = row_of[pk]
    liked = load_texts(app.store, [int(index.pks[r]) for r in liked_rows])

    def liked_title(k: int) -> str:
        return liked.get(int(index.pks[liked_rows[k]]), ("", ""))[0]

    matched = matched_labels(scores, row)
    total = float(scores.total[row])
    live = index.live
    position = int(((scores.total > total) & live).sum()) + 1
    nearest = (
        liked_title(int(scores.nearest_liked[row]))
        if scores.nearest_liked is not None and liked_rows
        else None
    )
    result = {
        "id": paper.id,
        "title": paper.title,
        "profile": profile.name,
        "score": round(total, 6),
        "rank": position,
        "of": int(live.sum()),
        "why": why(scores, row, matched=matched, liked_title=liked_title),
        "matched": list(matched),
        "excluded": bool(scores.excluded[row]),
        "disliked": bool(scores.disliked[row]),
        "nearest_liked": nearest,
        "breakdown": breakdown(scores, row),
    }
    if as_json:
        print_json(result)
        return
    click.echo(f"{paper.id}  {paper.title}")
    click.echo(
        f"profile {profile.name}: score {result['score']:.4f}, rank {position} of {result['of']}"
    )
    click.echo(f"why: {result['why']}")
    if nearest:
        click.echo(f"most similar liked paper: {nearest}")
    for key, value in result["breakdown"].items():  # type: ignore[attr-defined]
        click.echo(f"  {key:<40} {value:+.4f}")


@click.command()
@click.option("--limit", type=click.IntRange(min=1), help="Embed at most this many papers.")
@click.option(
    "--since-days",
    type=click.IntRange(min=1),
    help="Only papers first seen in the last N days (older ones stay lexical-only).",
)
@pass_app
@handle_errors
def embed(app: AppContext, limit: int | None, since_days: int | None) -> None:
    """Compute the embeddings that are missing, newest first (needs ``digestbot[semantic]``)."""
    from datetime import timedelta

    from digestbot.ranking.semantic import (
        TITLE,
        count_missing,
        embed_missing,
        get_embedder,
        vector_kinds,
        why_no_model,
    )

    embedder = get_embedder(app.settings.ranking)
    if embedder is None:
        raise ConfigError(
            f"no model to embed with: {why_no_model(app.settings.ranking.embedding_model)}",
            path=app.settings.source,
            key="ranking.embedding_model",
        )
    now = app.now()
    since = now - timedelta(days=since_days) if since_days is not None else None
    kinds = vector_kinds(app.settings.ranking)
    missing = count_missing(app.store, embedder, kinds, since=since)  # papers, then titles
    total = sum(n if limit is None else min(n, limit) for n in missing.values())
    with progress_bar(total, label="embedding", enabled=True) as advance:

        def on_batch(count: int) -> None:
            for _ in range(count):
                advance()

        done = embed_missing(
            app.store,
            embedder,
            now=now,
            limit=limit,
            since=since,
            on_batch=on_batch,
            titles=TITLE in kinds,
        )
    titles = f" and {done.titles} titles" if TITLE in kinds else ""
    click.echo(f"embedded {done.papers} papers{titles} with {embedder.name}")


COMMANDS = [rank, feedback, explain, embed]
