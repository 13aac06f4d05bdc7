"""Send the digests that are due, with the ledger as memory. The daemon and ``send`` call this.

For each profile and each of its destinations (``targets``), on the digest date
(the date of ``as_of`` in the profile's schedule time zone: the moment the digest is
for, which a catch-up after midnight sets to its fire time; ``now`` by default):

1. today's row is ``sent``/``empty``: nothing to do (a second run sends nothing);
   ``pending``/``failed``: retry it, same digest id, same papers;
2. older unsent rows are resolved: Slack parts a crashed run posted are found by
   their metadata and counted; the rest is ``superseded``, its unsent papers
   roll into today's digest (a catch-up, not a gap);
3. otherwise a new digest is built from the papers newer than the last
   successful digest's watermark and never sent to that destination, and
   RECORDED (unique per profile, destination, date) before anything is sent;
4. rows are claimed (a lease), sent, and marked ``sent`` only after the
   destination accepted them (``failed`` with the error otherwise). A Slack digest
   refused for its content goes out as plain text; refused even so, it is ``rejected``
   (not retried; an alert says so) and its papers may roll into the next digest. So is
   an email the server refused for itself (too large, its content: ``552``, ``5.6.x``)
   both in full and as plain text.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from digestbot.config import Profile, Settings
from digestbot.delivery.email import EmailResult, OutgoingEmail, sender_domain
from digestbot.delivery.formats import (
    EmailContent,
    Format,
    SlackMessage,
    file_suffix,
    render_email,
    render_email_cut,
    render_format,
    render_slack_messages,
    render_slack_plain,
)
from digestbot.delivery.outcomes import (
    DeliveryOutcome,
    OutcomeStatus,
    SendReport,
    digest_date_for,
    digest_id_for,
    form_note,
    pause_point,
)
from digestbot.delivery.targets import Deliverers, Target, build_deliverers, collect_targets
from digestbot.errors import ContentRefusedError, DeliveryError, DigestError
from digestbot.models import Digest, ScoredPaper
from digestbot.newsletter import (
    WEEK,
    address_of,
    build_unsubscribe,
    is_weekly_day,
    week_label,
)
from digestbot.pipeline import rank_candidates
from digestbot.ranking import pick
from digestbot.ranking.service import Ranking
from digestbot.services import REJECTED_EARLIER
from digestbot.store import SqlStore, ledger
from digestbot.store.ledger import DeliveryRecord, NewDelivery
from digestbot.store.ranking import load_papers_by_pk
from digestbot.store.subscribers import mark_bounced

log = logging.getLogger(__name__)

__all__ = [
    "Deliverers",
    "DeliveryOutcome",
    "SendReport",
    "build_deliverers",
    "send_due",
    "send_profile",
]

LEASE = timedelta(minutes=15)
OnOutcome = Callable[[DeliveryOutcome], None]


def send_due(
    settings: Settings,
    store: SqlStore,
    *,
    now: datetime,
    as_of: datetime | None = None,
    profiles: Sequence[str] | None = None,
    deliverers: Deliverers | None = None,
    dry_run: bool = False,
    on_outcome: OnOutcome | None = None,
) -> SendReport:
    """Build, record and deliver every due digest; see the module docstring.

    ``now`` is the real time (the ledger's timestamps and leases); ``as_of`` the moment
    the digests are for (their date, the ranking's and the weekly pool's time), ``now``
    unless given. ``on_outcome`` is called with each outcome as it is known (a progress
    display).
    """
    # each profile once, however often it is named (``send --profile a --profile a``)
    chosen = (
        [settings.profile(n) for n in dict.fromkeys(profiles)]
        if profiles
        else list(settings.profiles)
    )
    if deliverers is None:
        deliverers = Deliverers() if dry_run else build_deliverers(settings)
    report = SendReport()
    for profile in chosen:
        run = _ProfileRun(
            settings,
            store,
            profile,
            now=now,
            as_of=as_of,
            deliverers=deliverers,
            on_outcome=on_outcome,
        )
        report.outcomes.extend(run.preview() if dry_run else run.send())
    return report


def send_profile(
    settings: Settings,
    store: SqlStore,
    profile: Profile,
    targets: Sequence[Target],
    *,
    now: datetime,
    as_of: datetime | None = None,
    deliverers: Deliverers,
) -> list[DeliveryOutcome]:
    """Send one profile's due digest to the given targets (a profile not in the config:
    personal digests), with the same ledger guarantees as ``send_due``."""
    run = _ProfileRun(
        settings, store, profile, now=now, as_of=as_of, deliverers=deliverers, targets=targets
    )
    return run.send()


class _ProfileRun:
    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        profile: Profile,
        *,
        now: datetime,
        as_of: datetime | None = None,
        deliverers: Deliverers,
        targets: Sequence[Target] | None = None,
        on_outcome: OnOutcome | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.profile = profile
        self.now = now  # the real time: the ledger's timestamps, and leases
        self.as_of = as_of or now  # the moment the digest is for
        self.deliverers = deliverers
        self.day = digest_date_for(profile, self.as_of)
        self.targets = (
            list(targets)
            if targets is not None
            else collect_targets(settings, store, profile, now=self.as_of)
        )
        self.on_outcome = on_outcome
        self.unsubscribe = build_unsubscribe(settings) if self._has_email() else None
        self._slack: dict[tuple[str, ...], list[SlackMessage]] = {}
        self._email: dict[tuple[str, ...], EmailContent] = {}
        self._email_digests: dict[tuple[str, ...], Digest] = {}

    def _has_email(self) -> bool:
        return any(t.kind == "email" for t in self.targets)

    # -- planning ---------------------------------------------------------------------------
    def _outcome(self, target: Target, status: OutcomeStatus, **kw: Any) -> DeliveryOutcome:
        outcome = DeliveryOutcome(
            profile=self.profile.name, destination=target.key, status=status, **kw
        )
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def _plan(
        self,
    ) -> tuple[
        list[DeliveryOutcome],
        list[tuple[Target, DeliveryRecord]],
        list[Target],
        list[DeliveryRecord],
    ]:
        """Done outcomes, today's rows to retry, targets needing a new digest, stale rows."""
        slots = ledger.load_slots(
            self.store,
            profile=self.profile.name,
            destinations=[t.key for t in self.targets],
            digest_date=self.day,
        )
        done: list[DeliveryOutcome] = []
        retry: list[tuple[Target, DeliveryRecord]] = []
        fresh: list[Target] = []
        stale: list[DeliveryRecord] = []
        weekly_day = is_weekly_day(
            self.profile, self.as_of, weekly_day=self.settings.email.weekly_day
        )
        for target in self.targets:
            rows = slots[target.key]
            today = next((r for r in rows if r.digest_date == self.day), None)
            older = [r for r in rows if r.digest_date != self.day and r.status in ledger.OPEN]
            if today is None and older and target.cadence == "weekly" and not weekly_day:
                # a weekly digest that failed on its day: send that one (no new one till
                # the next weekly day); see newsletter.subscriber_targets
                today = older.pop()
            stale.extend(older)
            if today is None:
                fresh.append(target)
            elif today.status in ledger.OPEN:
                retry.append((target, today))
            elif today.status == ledger.REJECTED:
                done.append(
                    self._outcome(
                        target,
                        "rejected",
                        papers=today.paper_count,
                        digest_id=today.digest_id,
                        error=today.error or "",
                        detail=REJECTED_EARLIER,
                    )
                )
            else:
                status: OutcomeStatus = "already-sent" if today.status == "sent" else "nothing-new"
                done.append(
                    self._outcome(
                        target, status, papers=today.paper_count, digest_id=today.digest_id
                    )
                )
        return done, retry, fresh, stale

    def _ranking(self, candidates: Collection[int]) -> Ranking:
        """The candidates (pks) best first, as the store's rank scores them: the persisted
        index, the stored embeddings, the profile's 👍/👎 votes and the config's ranking
        settings (as `digestbot rank` shows)."""
        return rank_candidates(
            self.store,
            self.profile,
            now=self.as_of,
            settings=self.settings.ranking,
            only=candidates,
        )

    def _new_digests(self, fresh: Sequence[Target]) -> list[tuple[NewDelivery, list[ScoredPaper]]]:
        """Per target: the best papers never sent there among those new since its last digest."""
        if not fresh:
            return []
        marks = ledger.load_watermarks(
            self.store, profile=self.profile.name, destinations=[t.key for t in fresh]
        )
        # papers a digest cut to fit the mail server's size limit did not carry: owed until
        # sent (a week at most; the latest digest's whatever its age)
        left_out = ledger.load_left_out(
            self.store,
            profile=self.profile.name,
            watermarks=marks,
            since=self.day - timedelta(days=ledger.LEFT_OUT_DAYS),
        )
        also = set().union(*left_out.values())
        pk_of, sent, top = ledger.load_unsent(self.store, watermarks=marks, also=also)
        refused = ledger.load_rejected_papers(self.store, destinations=[t.key for t in fresh])
        ranking = self._ranking(pk_of.values())
        ranked = [s for s in ranking.papers if s.paper.id in pk_of]
        weekly = any(t.cadence == "weekly" for t in fresh)
        # a weekly reader's pool: the papers first seen in the 7 days before the digest
        week = ledger.load_seen_since(self.store, since=self.as_of - WEEK) if weekly else set()
        out: list[tuple[NewDelivery, list[ScoredPaper]]] = []
        for target in fresh:
            mark, got = marks[target.key], sent[target.key] | refused[target.key]
            owed = left_out[target.key]
            pool = [
                s
                for s in ranked
                if (pk_of[s.paper.id] > mark or pk_of[s.paper.id] in owed)
                and pk_of[s.paper.id] not in got
            ]
            if target.cadence == "weekly":  # newsletter: the best of the past 7 days
                recent = week | owed if owed else week
                pool = [s for s in pool if pk_of[s.paper.id] in recent]
            # deep in the candidates' ranking a paper is light (no breakdown): it carries
            # ``direct`` for ``pick``, and once picked gets its full ``why`` from the scores
            chosen = ranking.detail(pick(pool, self.profile))
            empty = not chosen and self.profile.on_empty == "skip"
            item = NewDelivery(
                digest_id=digest_id_for(self.profile.name, target.key, self.day),
                profile=self.profile.name,
                destination=target.key,
                digest_date=self.day,
                status="empty" if empty else "pending",
                watermark=top,
                papers=tuple((pk_of[s.paper.id], s.score, s.why) for s in chosen),
            )
            out.append((item, chosen))
        return out

    def _digest(
        self, papers: Sequence[tuple[int, float, str]], *, generated_at: datetime | None = None
    ) -> Digest:
        """The digest of these papers (pk, score, why), loaded by their row keys: a paper
        that gained its arXiv id since the digest was planned (its ``t-…`` id gone) is
        carried under the id it has now, as the ledger counts it sent by its row key."""
        found = load_papers_by_pk(self.store, [pk for pk, _, _ in papers]) if papers else {}
        items = tuple(
            ScoredPaper(paper=found[pk], score=score, why=why)
            for pk, score, why in papers
            if pk in found
        )
        return Digest(
            profile=self.profile.name,
            digest_date=self.day,
            generated_at=generated_at or self.now,
            papers=items,
            description=self.profile.description,
        )

    def _record_digest(self, record: DeliveryRecord) -> Digest:
        papers = [(p.paper_pk, p.score, p.why) for p in record.papers]
        return self._digest(papers, generated_at=record.created_at)

    # -- dry run ----------------------------------------------------------------------------
    def preview(self) -> list[DeliveryOutcome]:
        done, retry, fresh, _stale = self._plan()
        out = list(done)
        pending = [(t, self._record_digest(r), r.digest_id) for t, r in retry]
        for item, _ in self._new_digests(fresh):
            target = next(t for t in self.targets if t.key == item.destination)
            if item.status == "empty":
                out.append(self._outcome(target, "nothing-new"))
                continue
            pending.append((target, self._digest(item.papers), item.digest_id))
        templates = self.settings.templates_dir
        rendered: dict[tuple[str, ...], str] = {}
        for target, digest, digest_id in pending:
            fmt: Format = "markdown"
            if target.file is not None:
                fmt = target.file.format
            elif target.kind in ("slack", "webhook"):
                fmt = "slack"
            elif target.kind == "email":
                fmt = "email-text"
            key = (target.kind, fmt, target.cadence, *(item.paper.id for item in digest.papers))
            if key not in rendered:  # a thousand readers of one digest: rendered once
                text = render_format(digest, fmt, templates_dir=templates)
                if target.kind == "email":
                    week = week_label(self.day) if target.cadence == "weekly" else ""
                    subject = render_email(digest, templates_dir=templates, week=week).subject
                    text = f"Subject: {subject}\n\n{text}"
                rendered[key] = text
            text = rendered[key]
            out.append(
                self._outcome(
                    target, "dry-run", papers=digest.count, digest_id=digest_id, preview=text
                )
            )
        return out

    # -- sending ----------------------------------------------------------------------------
    def send(self) -> list[DeliveryOutcome]:
        done, retry, fresh, stale = self._plan()
        out = list(done)
        blocked = self._resolve_stale(stale)
        for target in fresh:
            if target.key in blocked:  # an older digest is still being sent by another run
                out.append(self._outcome(target, "already-sent", detail="another run is sending"))
        fresh = [t for t in fresh if t.key not in blocked]
        recorded, lost = ledger.record_deliveries(
            self.store, [item for item, _ in self._new_digests(fresh)], now=self.now
        )
        by_key = {t.key: t for t in self.targets}
        for item in lost:
            out.append(
                self._outcome(
                    by_key[item.destination],
                    "already-sent",
                    digest_id=item.digest_id,
                    detail="another run recorded this digest first",
                )
            )
        todo = list(retry)
        for record in recorded:
            if record.status == "empty":
                out.append(self._outcome(by_key[record.destination], "nothing-new"))
            else:
                todo.append((by_key[record.destination], record))
        token = uuid.uuid4().hex
        claimed = ledger.claim_deliveries(
            self.store, [r.pk for _, r in todo], token=token, now=self.now, lease=LEASE
        )
        emails: list[tuple[Target, DeliveryRecord]] = []
        for target, record in todo:
            if record.pk not in claimed:
                out.append(
                    self._outcome(
                        target,
                        "already-sent",
                        papers=record.paper_count,
                        digest_id=record.digest_id,
                        detail="another run is sending this digest",
                    )
                )
            elif target.kind == "email":
                emails.append((target, record))
            else:
                out.append(self._send_one(target, record))
        out.extend(self._send_emails(emails))
        return out

    def _resolve_stale(self, stale: Sequence[DeliveryRecord]) -> set[str]:
        """Settle older unsent rows; returns destinations another run holds a lease on."""
        blocked: set[str] = set()
        settle: list[DeliveryRecord] = []
        for record in stale:
            if record.is_leased(self.now):
                blocked.add(record.destination)
            elif not (record.status == "pending" and self._recover_slack(record)):
                settle.append(record)
        ledger.mark_superseded(self.store, settle, now=self.now)
        return blocked

    def _recover_slack(self, record: DeliveryRecord) -> bool:
        """A run that died while posting: count the parts Slack has; True if all are there."""
        target = next((t for t in self.targets if t.key == record.destination), None)
        slack = self.deliverers.slack
        if target is None or target.kind != "slack" or slack is None or record.attempts == 0:
            return False
        messages = render_slack_messages(
            self._record_digest(record), templates_dir=self.settings.templates_dir
        )
        parts: dict[str, str] = dict(record.progress.get("parts") or {})
        found = slack.find_posted(
            record.progress.get("channel") or target.channel,
            record.digest_id,
            thread_ts=parts.get("0"),
            total=len(messages),
            made_at=record.created_at,
        )
        for index, ts in sorted(found.items()):
            if index < len(messages) and str(index) not in parts:
                parts[str(index)] = ts
                ledger.record_part_sent(
                    self.store,
                    record,
                    progress={**record.progress, "parts": parts},
                    paper_ids=messages[index].paper_ids,
                    now=self.now,
                )
        if len(parts) < len(messages):
            return False
        ledger.mark_sent(self.store, record, external_id=parts["0"], now=self.now)
        return True

    def _send_one(self, target: Target, record: DeliveryRecord) -> DeliveryOutcome:
        try:
            digest = self._record_digest(record)
            external, detail = self._deliver(target, record, digest)
        except ContentRefusedError as exc:  # even as plain text: the same refusal each time
            ledger.mark_rejected(self.store, record, error=str(exc), now=self.now)
            log.error(
                "Slack refused the digest %s to %s for its content: %s",
                record.digest_id,
                target.key,
                exc.reason,
                extra={"event": "delivery.rejected", "destination": target.key},
            )
            return self._outcome(
                target,
                "rejected",
                papers=record.paper_count,
                error=str(exc),
                digest_id=record.digest_id,
            )
        except DigestError as exc:
            ledger.mark_failed(self.store, record, error=str(exc), now=self.now)
            return self._outcome(
                target,
                "failed",
                papers=record.paper_count,
                error=str(exc),
                digest_id=record.digest_id,
            )
        pause_point("after-send")
        ledger.mark_sent(self.store, record, external_id=external, now=self.now)
        if detail:
            log.warning("digest %s to %s %s", record.digest_id, target.key, detail)
        pause_point("after-record")
        return self._outcome(
            target, "sent", papers=record.paper_count, digest_id=record.digest_id, detail=detail
        )

    def _deliver(self, target: Target, record: DeliveryRecord, digest: Digest) -> tuple[str, str]:
        """Deliver; returns the external id and a note on how (the plain-text fallback)."""
        templates = self.settings.templates_dir
        if target.kind == "file":
            assert target.file is not None
            fmt = target.file.format
            name = f"{digest.profile}-{digest.digest_date.isoformat()}{file_suffix(fmt)}"
            text = render_format(digest, fmt, templates_dir=templates)
            return str(self.deliverers.files.write(Path(target.file.path), name, text)), ""
        messages = render_slack_messages(digest, templates_dir=templates)
        progress: dict[str, Any] = {**record.progress, "total": len(messages)}

        def on_part(index: int, state: dict[str, Any]) -> None:
            pause_point("after-send")
            progress.update(state)
            ledger.record_part_sent(
                self.store,
                record,
                progress=progress,
                paper_ids=messages[index].paper_ids,
                now=self.now,
            )
            pause_point("after-part-record")

        if target.kind == "webhook":
            webhook = self.deliverers.webhooks.get(target.key)
            if webhook is None:
                raise DeliveryError("no webhook client configured", destination=target.key)
            external = webhook.post_digest(
                messages,
                digest_id=record.digest_id,
                progress=progress,
                on_part=on_part,
                fallback=render_slack_plain(digest, messages),
            )
            return external, form_note(target.key, progress)
        if self.deliverers.slack is None:
            raise DeliveryError(
                "slack.bot_token is not set (needed to post to a channel)", destination=target.key
            )
        external = self.deliverers.slack.post_digest(
            target.channel,
            messages,
            digest_id=record.digest_id,
            progress=progress,
            maybe_posted=record.attempts > 0,
            on_part=on_part,
            made_at=record.created_at,
            fallback=render_slack_plain(digest, messages),
        )
        return external, form_note(target.key, progress)

    def _send_emails(self, items: Sequence[tuple[Target, DeliveryRecord]]) -> list[DeliveryOutcome]:
        if not items:
            return []
        email = self.deliverers.email
        out: list[DeliveryOutcome] = []
        mails: list[OutgoingEmail] = []
        owner: dict[str, tuple[Target, DeliveryRecord]] = {}
        domain = sender_domain(self.settings.email.sender)
        for target, record in items:
            try:
                if email is None:
                    raise DeliveryError("no SMTP deliverer configured", destination=target.key)
                content = self._email_content(record, target)
            except DigestError as exc:
                ledger.mark_failed(self.store, record, error=str(exc), now=self.now)
                out.append(self._failed(target, record, str(exc)))
                continue
            mail = OutgoingEmail(
                to=target.recipient,
                content=content,
                message_id=f"<{record.digest_id}@{domain}>",
                profile=self.profile.name,
                unsubscribe_url=self.unsubscribe.url if self.unsubscribe else "",
                unsubscribe_token=self.unsubscribe.token_for(
                    profile=self.profile.name, address=address_of(target)
                )
                if self.unsubscribe
                else "",
                papers=len(record.papers),
                cut=partial(self._email_cut, record, target),
                compact=None
                if content.is_compact
                else partial(self._email_content, record, target, compact=True),
            )
            mails.append(mail)
            owner[mail.message_id] = (target, record)
        if not mails or email is None:
            return out

        accepted: list[tuple[DeliveryRecord, str | None]] = []
        notes: dict[int, dict[str, Any]] = {}  # record pk -> how it went (plain text)
        only: dict[int, list[str]] = {}  # record pk -> the papers its cut message carried

        def on_idle() -> None:  # no result waiting: record the accepted ones at once
            ledger.mark_sent_many(self.store, accepted, now=self.now, progress=notes, only=only)
            if accepted:
                pause_point("after-record")
            accepted.clear()
            notes.clear()
            only.clear()

        def on_result(mail: OutgoingEmail, result: EmailResult) -> None:
            target, record = owner[mail.message_id]
            if result.ok:
                pause_point("after-send")
                accepted.append((record, result.message_id))
                papers = record.paper_count
                if result.plain or result.compact:
                    form = "compact" if result.compact else "plain"
                    note: dict[str, Any] = {"form": form, "refused": result.refusal}
                    if result.kept:
                        carried = self._email_digest(record, target).papers[: result.kept]
                        only[record.pk] = [item.paper.id for item in carried]
                        papers = len(only[record.pk])
                        note |= {"kept": papers, ledger.LEFT_OUT: record.paper_count - papers}
                    notes[record.pk] = note
                detail = form_note(target.key, notes.get(record.pk, {}))
                if detail:
                    log.warning("digest %s to %s %s", record.digest_id, target.key, detail)
                out.append(
                    self._outcome(
                        target,
                        "sent",
                        papers=papers,
                        digest_id=record.digest_id,
                        detail=detail,
                    )
                )
            elif result.refused:  # the same message would be refused every day
                error = f"{target.key}: {result.error}"
                ledger.mark_rejected(self.store, record, error=error, now=self.now)
                log.error(
                    "the mail server refused the digest %s to %s for itself: %s",
                    record.digest_id,
                    target.key,
                    result.error,
                    extra={"event": "delivery.rejected", "destination": target.key},
                )
                out.append(
                    self._outcome(
                        target,
                        "rejected",
                        papers=record.paper_count,
                        error=error,
                        digest_id=record.digest_id,
                    )
                )
            else:
                error = f"{target.key}: {result.error}"
                ledger.mark_failed(self.store, record, error=error, now=self.now)
                if result.bounced:  # a subscriber is not retried daily forever
                    mark_bounced(
                        self.store,
                        profile=self.profile.name,
                        address=address_of(target),
                        error=result.error,
                        now=self.now,
                    )
                out.append(self._failed(target, record, error))

        try:
            email.send_all(mails, now=self.now, on_result=on_result, on_idle=on_idle)
        finally:
            on_idle()
        return out

    def _failed(self, target: Target, record: DeliveryRecord, error: str) -> DeliveryOutcome:
        return self._outcome(
            target, "failed", papers=record.paper_count, error=error, digest_id=record.digest_id
        )

    def _email_key(self, record: DeliveryRecord, target: Target) -> tuple[str, ...]:
        return (
            target.cadence,
            record.digest_date.isoformat(),
            *(str(p.paper_pk) for p in record.papers),
        )

    def _email_digest(self, record: DeliveryRecord, target: Target) -> Digest:
        key = self._email_key(record, target)
        if key not in self._email_digests:  # a thousand readers of one digest: loaded once
            self._email_digests[key] = self._record_digest(record)
        return self._email_digests[key]

    def _email_content(
        self, record: DeliveryRecord, target: Target, *, compact: bool = False
    ) -> EmailContent:
        """The digest's email, rendered once per digest whatever the readers; ``compact``:
        no abstracts in its HTML (the full one too large for the mail server)."""
        key = (*self._email_key(record, target), "compact" if compact else "full")
        if key not in self._email:
            self._email[key] = render_email(
                self._email_digest(record, target),
                templates_dir=self.settings.templates_dir,
                unsubscribe_url=self.unsubscribe.url if self.unsubscribe else "",
                week=week_label(record.digest_date) if target.cadence == "weekly" else "",
                compact=compact,
            )
        return self._email[key]

    def _email_cut(self, record: DeliveryRecord, target: Target, keep: int) -> EmailContent:
        """The plain text listing the first ``keep`` papers (too large for the mail server
        in full): rendered once per digest and length, whatever the readers."""
        key = (*self._email_key(record, target), f"keep={keep}")
        if key not in self._email:
            self._email[key] = render_email_cut(
                self._email_digest(record, target),
                keep,
                templates_dir=self.settings.templates_dir,
                unsubscribe_url=self.unsubscribe.url if self.unsubscribe else "",
                week=week_label(record.digest_date) if target.cadence == "weekly" else "",
            )
        return self._email[key]
