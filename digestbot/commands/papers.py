"""Commands over the paper store: ingest, papers, show, digest, demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from digestbot.cli import AppContext, handle_errors, pass_app, print_json, progress_bar
from digestbot.delivery.formats import FORMATS, Format, render_format
from digestbot.ingest import FileOutcome, IngestReport, ingest_paths, list_drop_files
from digestbot.models import paper_as_dict
from digestbot.pipeline import build_digest, index_after_ingest, write_markdown_digest
from digestbot.store.feedback import PaperVote, load_paper_votes
from digestbot.store.ledger import PaperDelivery, load_paper_deliveries
from digestbot.store.search import catch_up_search_index, count_search_backlog


def run_ingest(
    app: AppContext, paths: tuple[Path, ...], *, show_progress: bool, retry_failed: bool = False
) -> IngestReport:
    files = list_drop_files(paths or (app.settings.drops.path,))
    with progress_bar(len(files), label="ingesting", enabled=show_progress) as advance:

        def on_file(outcome: FileOutcome) -> None:
            advance()
            if outcome.status == "failed":
                again = ""
                if outcome.unchanged:
                    again = " (unchanged since it failed: not parsed again; "
                    again += "ingest --retry-failed parses it)"
                click.echo(f"failed: {outcome.error}{again}", err=True)

        report = ingest_paths(
            app.store,
            (),
            files=files,
            now=app.now(),
            on_file=on_file,
            index_search=False,
            retry_failed=retry_failed,
        )
    backlog = count_search_backlog(app.store)  # every paper, the first time after an upgrade
    with progress_bar(backlog, label="search index", enabled=show_progress and backlog > 0) as step:
        if report.papers_new or report.papers_merged:  # the next search or rank pays nothing
            index_after_ingest(app.store, app.settings.ranking, on_search_step=step)
        elif backlog:  # nothing new, but a search index behind (an upgrade): caught up here
            catch_up_search_index(app.store, on_step=step)
    return report


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Parse again files that failed before even if unchanged (default: report their error).",
)
@pass_app
@handle_errors
def ingest(app: AppContext, paths: tuple[Path, ...], as_json: bool, retry_failed: bool) -> None:
    """Ingest drop files (default: the drops folder). Exit 1 if any file failed."""
    report = run_ingest(app, paths, show_progress=not as_json, retry_failed=retry_failed)
    if as_json:
        print_json(report.as_dict())
    else:
        summary = report.as_dict()
        files, papers = summary["files"], summary["papers"]
        assert isinstance(files, dict) and isinstance(papers, dict)
        click.echo(
            f"files: {files['new']} new, {files['skipped']} skipped, {files['failed']} failed; "
            f"papers: {papers['new']} new, {papers['merged']} merged"
        )
    if not report.ok:
        sys.exit(1)


@click.command()
@click.option("--search", help="Only papers whose title or abstract contains every word.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many papers.")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handle_errors
def papers(app: AppContext, search: str | None, limit: int | None, as_json: bool) -> None:
    """List stored papers, newest first."""
    found = app.store.load_papers(search=search, limit=limit, with_sources=True)
    if as_json:
        print_json([paper_as_dict(p) for p in found])
        return
    for paper in found:
        date = paper.published.isoformat() if paper.published else "          "
        click.echo(f"{paper.id:<16} {date} ▲{paper.upvotes:<4} {paper.title}")


def _delivery_dict(item: PaperDelivery) -> dict[str, object]:
    return {
        "profile": item.profile,
        "destination": item.destination,
        "digest_date": item.digest_date.isoformat(),
        "status": item.status,
        "rank": item.position + 1,
        "sent_at": item.sent_at.isoformat() if item.sent_at else None,
    }


def _vote_dict(vote: PaperVote) -> dict[str, object]:
    return {
        "subject_kind": vote.subject_kind,
        "subject": vote.subject,
        "value": vote.value,
        "source": vote.source,
        "created_at": vote.created_at.isoformat(),
    }


@click.command()
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handle_errors
def show(app: AppContext, paper_id: str, as_json: bool) -> None:
    """One paper in full, the digests that carried it and its votes. PAPER_ID: its id, an
    arXiv id, a t-… id (also an earlier one), its exact title (or an earlier one) or DOI."""
    found = app.store.get_paper(paper_id)
    paper = app.store.load_papers(ids=[found.id], with_sources=True)[0]
    sent = load_paper_deliveries(app.store, paper.id)
    votes = load_paper_votes(app.store, paper.id)
    if as_json:
        print_json(
            paper_as_dict(paper)
            | {
                "deliveries": [_delivery_dict(d) for d in sent],
                "votes": [_vote_dict(v) for v in votes],
            }
        )
        return
    click.echo(paper.title)
    facts = [paper.id]
    if paper.arxiv_id and paper.arxiv_id != paper.id:
        facts.append(f"arXiv {paper.arxiv_id}")
    if paper.published:
        facts.append(f"published {paper.published.isoformat()}")
    facts.append(f"▲{paper.upvotes}")
    if paper.organization:
        facts.append(paper.organization)
    elif paper.authors:
        facts.append(", ".join(paper.authors))
    elif paper.authors_count:
        facts.append(f"{paper.authors_count} authors")
    click.echo(" · ".join(facts))
    for url in dict.fromkeys(u for u in (paper.link, *paper.urls) if u):
        click.echo(url)
    if paper.abstract:
        click.echo("")
        click.echo(paper.abstract)
    click.echo("")
    first = paper.first_seen.isoformat(timespec="seconds") if paper.first_seen else "-"
    click.echo(f"first seen {first}, from:")
    for src in paper.sources:
        if src.kind == "drop":
            where = f"{src.name}:{src.line}" if src.line else src.name
            click.echo(f"  drop {where} (entry {src.entry})")
        else:
            click.echo(f"  {src.kind} {src.name} (item {src.entry})")
    if sent:
        click.echo("digests:")
    for item in sent:
        when = item.sent_at.strftime("%Y-%m-%d %H:%M") if item.sent_at else "not sent"
        click.echo(
            f"  {item.digest_date.isoformat()}  {item.profile} → {item.destination}  "
            f"#{item.position + 1}  {item.status}  {when}"
        )
    for vote in votes:
        mark = "up" if vote.value > 0 else "down"
        click.echo(f"vote: {mark} by {vote.subject_kind} {vote.subject} ({vote.source})")


@click.command()
@click.option("--profile", "profile_name", required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="markdown", show_default=True)
@pass_app
@handle_errors
def digest(app: AppContext, profile_name: str, fmt: Format) -> None:
    """Render a profile's digest to stdout (sends nothing)."""
    profile = app.settings.profile(profile_name)
    built = build_digest(app.store, profile, now=app.now(), settings=app.settings.ranking)
    click.echo(render_format(built, fmt, templates_dir=app.settings.templates_dir), nl=False)


@click.command()
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), help="Default: output_dir (./out)."
)
@pass_app
@handle_errors
def demo(app: AppContext, out_dir: Path | None) -> None:
    """The main job on embedded defaults: ingest drops, write a Markdown digest per profile."""
    report = run_ingest(app, (), show_progress=True)
    click.echo(
        f"ingested {report.papers_new} new papers ({report.papers_merged} merged, "
        f"{report.count('skipped')} files already known, {report.count('failed')} failed)",
        err=True,
    )
    target = out_dir or app.settings.output_dir
    for profile in app.settings.profiles:
        built = build_digest(app.store, profile, now=app.now(), settings=app.settings.ranking)
        path = write_markdown_digest(
            built, out_dir=target, templates_dir=app.settings.templates_dir
        )
        click.echo(str(path))
    if not report.ok:
        sys.exit(1)


COMMANDS = [ingest, papers, show, digest, demo]  # rank: digestbot.commands.ranking
