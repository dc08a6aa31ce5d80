"""Ask before alarming: the rules of an inactivity check-in ("press if you are fine").

Pure: no I/O, no clock. When a quiet spell passes the resident's learned normal (its
threshold) but not yet the care plan's cap for the state, the resident is first asked on
their button or wristband (a ``check_in`` command, docs/device-protocol.md section 6). An
answer (the device's ``check_in_ok`` carrying the check's id, or any other sign of life)
records a check-in and the spell starts again; no answer within the plan's window
(``check_in_s``) raises the inactivity alert at once.

**Where sitting cannot be seen** (no seat mat or radar in the home) the threshold of a spell
at home is the seated cap (4 h), since a person sitting still looks like one on the floor; the
question is then put at the ``active`` cap (2 h, :attr:`Deadline.ask_point`), and an
unanswered one alerts one window later (2 h 10 min) instead of at 4 h. Elsewhere the ask point
is the threshold.

**The cap is never passed** (:func:`ask_at`): the question is put at the ask point, or one
window before the cap when that is closer to the cap than a window (a threshold at the cap, on
site defaults or learned): an unanswered check-in then alerts at the cap, exactly when the
alert would have come without asking. So asking never makes an alert later than the cap.
**Nor is a deadline** (:func:`raise_from`, :func:`tick_from`): the tick loop acts from one
tick before a time is due, at its last pass not after it.

Asked only when all of these hold (:func:`due_at`); otherwise the alert comes at the
threshold, as without check-ins:

* the plan allows it (``check_in_s`` > 0; 0 is the dementia default);
* the resident has a device that can answer (:func:`answering_device`);
* the per-resident budget is not spent: at most ``BUDGET`` check-ins per ``BUDGET_S``
  (2 in 3 days, rolling: more would mean the learned normal is too short for this person), and
  an **early** question (before the threshold's, :func:`is_early`) only while fewer than
  ``EARLY_BUDGET`` (1) were asked in it: the rest is kept for the threshold, where an
  answered question saves a false alarm;
* at least ``MIN_ANSWER_S`` are left before the cap.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alerts.detection.detectors.snapshot import DeviceSnapshot
from alerts.detection.routine import Activity, Deadline, is_sign_of_life
from devices.wire import CHECK_IN_ANSWER

ANSWER = CHECK_IN_ANSWER
ANSWER_KINDS = ("wristband", "sos_button")  # a device with a button the resident can press
BUDGET = 2  # check-ins per resident ...
BUDGET_S = 3 * 86400.0  # ... per this long (rolling)
# An early question (before the threshold: where sitting cannot be seen) only while fewer
# than this were asked in BUDGET_S: the rest of the budget is kept for the threshold.
EARLY_BUDGET = 1
MIN_ANSWER_S = 120.0  # less time than this left before the cap: raise the alert directly
# The tick loop's period (ELDERCARE_TICK_INTERVAL_S, default 60 s): an alert with a deadline
# is raised from one tick before it (:func:`raise_from`), so never after it. The check loop
# that raises unanswered check-ins polls every second (ELDERCARE_CHECKS_POLL_INTERVAL_S).
TICK_S = 60.0


def answering_device(devices: Iterable[DeviceSnapshot], *, site_kind: str) -> DeviceSnapshot | None:
    """The resident's own button or wristband (assigned to them, or any in a home-care bed,
    where the home has one resident); a wristband before a button; None: no check-in."""
    own = [
        d
        for d in devices
        if d.kind in ANSWER_KINDS and (d.personal or site_kind == "home_care_bed")
    ]
    own.sort(key=lambda d: (ANSWER_KINDS.index(d.kind), d.device_key))
    return own[0] if own else None


def cap_at(deadline: Deadline) -> float:
    return deadline.counted_from + deadline.cap_s


def raise_from(deadline: Deadline, tick_s: float = TICK_S) -> float:
    """The first tick time (epoch s) at which an alert due at ``deadline.at`` is raised: one
    tick before it, so the tick loop raises it at its last pass **not after** the deadline
    (from the deadline itself, a loop every ``tick_s`` is up to one tick late: the 4-h cap
    became 4 h 1 min)."""
    return max(deadline.counted_from, deadline.at - tick_s)


def ask_at(deadline: Deadline, window_s: float) -> float:
    """When the question is due (epoch s): the ask point (the threshold, or the active cap
    where sitting cannot be seen: :attr:`Deadline.ask_point`), or one window before the cap if
    that is earlier; the threshold itself when the plan asks nothing. The tick loop acts on it
    from one tick before (:func:`raise_from`, :func:`tick_from`)."""
    if window_s <= 0:
        return deadline.at
    return max(deadline.counted_from, min(deadline.ask_point, cap_at(deadline) - window_s))


def late_ask_at(deadline: Deadline, window_s: float) -> float:
    """The question at the threshold, or one window before the cap if that is earlier (where
    the threshold is the ask point, :func:`ask_at` is this)."""
    return max(deadline.counted_from, min(deadline.at, cap_at(deadline) - window_s))


def is_early(deadline: Deadline, *, now: float, window_s: float) -> bool:
    """A question at ``now`` comes before the threshold's (:func:`late_ask_at`)."""
    return now < late_ask_at(deadline, window_s) - TICK_S


def tick_from(deadline: Deadline, window_s: float, tick_s: float = TICK_S) -> float:
    """The first tick at which the detector speaks for this spell: one tick before the
    question (or, nobody to ask, the alert) is due."""
    return max(deadline.counted_from, ask_at(deadline, window_s) - tick_s)


def due_at(
    deadline: Deadline, *, now: float, window_s: float, asked_recently: int, can_answer: bool
) -> float | None:
    """When an unanswered check-in asked at ``now`` (at or after :func:`ask_at`) raises the
    alert: one window after the question, not before the ask point (a question put one window
    before the cap is due at the cap) and never past the cap; None: nothing is asked now (the
    module's conditions; an early question waits for the threshold's when only the reserve is
    left), the alert comes at the threshold. Epoch seconds."""
    allowed = EARLY_BUDGET if is_early(deadline, now=now, window_s=window_s) else BUDGET
    if window_s <= 0 or not can_answer or asked_recently >= allowed:
        return None
    due = min(max(now + window_s, deadline.ask_point), cap_at(deadline))
    return due if due - now >= MIN_ANSWER_S else None


@dataclass(frozen=True, slots=True)
class PendingCheckIn:
    check_id: int
    device_key: int | None  # the device asked; None: asked by SMS on the resident's phone
    asked_at: float  # epoch s
    due_at: float
    window_s: int


@dataclass(frozen=True, slots=True)
class Answer:
    at: float
    how: str  # "answered" (the button), "sign of life" or "replied by SMS: ..."


@dataclass(frozen=True, slots=True)
class Help:
    """The resident replied to an SMS check-in asking for a person ("2", "救命", "help")."""

    at: float
    text: str


# An SMS check-in says "reply 1 if you are fine, 2 if you need help". A reply is read only for
# these words, after NFKC (full-width digits, case) and trimming spaces and punctuation; a
# reply that is neither still shows the resident can write: it answers the check-in, and its
# words are kept in the outcome for the carers.
FINE_REPLIES = frozenset(
    {"1", "好", "好的", "很好", "我很好", "没事", "安好", "平安", "ok", "fine", "yes"}
)
HELP_MARKERS = (
    "2",
    "救",
    "帮",
    "help",
    "sos",
    "疼",
    "痛",
    "摔",
    "跌",
    "不舒服",
    "不好",
    "难受",
    "急",
    "120",
)
_TRIM = " \t\r\n.,!?;:~。、"  # after NFKC: full-width punctuation is ASCII


def read_reply(text: str) -> str:
    """``help``, ``fine`` or ``other`` for the text of a reply to an SMS check-in."""
    said = unicodedata.normalize("NFKC", text).strip(_TRIM).lower()
    if said in FINE_REPLIES:
        return "fine"
    if any(marker in said for marker in HELP_MARKERS):
        return "help"
    return "other"


def answered(
    check: PendingCheckIn, activities: Sequence[tuple[Activity, int, str | None]]
) -> Answer | None:
    """The first answer to an open check-in among (activity, device key, text value): the
    asked device's ``check_in_ok`` with this check's id, or any sign of life, after it was
    asked and by its due time."""
    for a, key, text in sorted(activities, key=lambda x: x[0].t):
        if not check.asked_at <= a.t <= check.due_at:
            continue
        if a.name == ANSWER:
            if key == check.device_key and text == str(check.check_id):
                return Answer(a.t, "answered")
            continue  # another check's answer, or another device's: not this one's
        if is_sign_of_life(a):
            return Answer(a.t, "sign of life")
    return None


def replied(check: PendingCheckIn, replies: Sequence[tuple[float, str]]) -> Answer | Help | None:
    """The first reply (time, text) to an SMS check-in from its asking to its due time."""
    for at, text in sorted(replies):
        if not check.asked_at <= at <= check.due_at:
            continue
        if read_reply(text) == "help":
            return Help(at, text)
        return Answer(at, f"replied by SMS: {text[:60]!r}")
    return None


def judge(
    check: PendingCheckIn,
    activities: Sequence[tuple[Activity, int, str | None]],
    *,
    now: float,
    replies: Sequence[tuple[float, str]] = (),
) -> Answer | Help | str | None:
    """An open check-in at ``now``: its answer (the earlier of a sign of life and an SMS
    reply), a reply asking for help, "no answer" (raise the alert), or None (wait)."""
    outcomes = [o for o in (answered(check, activities), replied(check, replies)) if o is not None]
    if outcomes:
        return min(outcomes, key=lambda o: o.at)
    return "no answer" if now >= check.due_at else None
