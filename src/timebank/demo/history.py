"""Months of care history for the demo, replayed through the real care services.

Each service is posted, taken, checked in and out, confirmed and reviewed at the moments it would have been
(``clock.replay_at``), so the demo's services, audit log, notifications and ledger hold what a station would
see after twenty weeks of work: every category, every funding source, QR and app check-ins, PINs, card codes,
proxies, paper-card entries, ratings, disputes and their outcomes — and, today, requests still open, services
waiting for confirmation and a review queue.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.utils import timezone

from timebank.care import cards
from timebank.care import services as care
from timebank.care.models import ConfirmMethod, Funding, Outcome, ServiceOrder, Status
from timebank.common import clock
from timebank.common.errors import ApplicationError
from timebank.notifications.models import Notification
from timebank.people.models import Member, User

HISTORY_DAYS = 140
YANDANG_CATEGORIES = [
    "emotional_support",
    "assistance",
    "outing_companionship",
    "culture_recreation",
    "health_education",
    "legal_aid",
    "training_talks",
    "fraud_prevention",
    "home_visit",
    "hospital_medicine",
    "sudden_difficulty",
    "psychological_counselling",
    "other",
]
JINYANG_CATEGORIES = [
    "emotional_support",
    "home_visit",
    "assistance",
    "hospital_medicine",
    "sudden_difficulty",
    "psychological_counselling",
    "personal_care",
    "culture_recreation",
]
NOTES = {
    "emotional_support": "陪老人聊天、读报",
    "assistance": "买菜、打扫卫生",
    "outing_companionship": "陪同去公园散步",
    "culture_recreation": "一起唱沪剧、下棋",
    "health_education": "讲解高血压用药",
    "legal_aid": "咨询遗嘱和房产问题",
    "training_talks": "教用智能手机挂号",
    "fraud_prevention": "识别电信诈骗电话",
    "other": "换灯泡、修水龙头",
    "home_visit": "上门探访，了解近况",
    "hospital_medicine": "陪同去瑞金医院配药",
    "sudden_difficulty": "停水后帮忙搬水",
    "psychological_counselling": "丧偶后的心理疏导",
    "personal_care": "协助洗澡",
}
COMPLAINTS = ["志愿者提前离开，实际只服务了半小时", "记录的时间比实际长", "老人说当天没有人来"]


@dataclass
class Cast:
    """Who acts in the replay."""

    station: User  # reviews 雁荡
    community: User  # posts for 雁荡's elders without a phone, enters paper cards
    hongkou: User  # 晋阳's station: posts, enters and reviews
    members: dict[str, Member]
    users: dict[str, User]  # member name -> their sign-in
    yandang_volunteers: list[str]
    jinyang_volunteers: list[str]
    yandang_elders: list[str]
    jinyang_elders: list[str]
    priority: set[str]
    pins: dict[str, str]
    proxies: dict[str, str]  # elder -> relative with a sign-in and a verified bond
    payers: dict[str, str]  # elder -> relative whose savings sometimes pay


def _moment(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def _past(moment: dt.datetime) -> dt.datetime:
    """No replay runs ahead of the real clock."""
    return min(moment, timezone.now())


def _try(action: Callable[[], object]) -> bool:
    """Run one step of the replay; a refusal by the rules (a volunteer busy, savings short) just skips it."""
    try:
        action()
    except ApplicationError:
        return False
    return True


class Replay:
    def __init__(self, cast: Cast, rng: random.Random) -> None:
        self.cast = cast
        self.rng = rng
        self.today = timezone.localdate()

    # --- who -----------------------------------------------------------------------------------------------

    def poster(self, elder: str, jinyang: bool) -> User:
        roll = self.rng.random()
        if elder in self.cast.proxies and roll < 0.35:
            return self.cast.users[self.cast.proxies[elder]]
        if elder in self.cast.users and roll < 0.8:
            return self.cast.users[elder]
        return self.cast.hongkou if jinyang else self.cast.community

    def reviewer(self, jinyang: bool) -> User:
        return self.cast.hongkou if jinyang else self.cast.station

    def funding(self, elder: str, poster: User) -> tuple[str, Member | None]:
        member = self.cast.members[elder]
        roll = self.rng.random()
        payer_name = self.cast.payers.get(elder)
        if payer_name and poster.member_id == self.cast.members[payer_name].pk and roll < 0.8:
            return Funding.FAMILY, self.cast.members[payer_name]
        if elder in self.cast.priority:
            return (Funding.PUBLIC if roll < 0.75 else Funding.POOL), None
        return Funding.OWN, member

    # --- one service ---------------------------------------------------------------------------------------

    def post(
        self, day: dt.date, hour: int, elder: str, category: str, *, jinyang: bool, length: int
    ) -> ServiceOrder | None:
        poster = self.poster(elder, jinyang)
        funding, payer = self.funding(elder, poster)
        posted_at = _moment(day - dt.timedelta(days=self.rng.randint(1, 4)), self.rng.randint(8, 17))
        orders: list[ServiceOrder] = []
        start = _moment(day, hour, self.rng.choice([0, 30]))

        def act() -> None:
            orders.extend(
                care.order_create(
                    actor=poster,
                    elder=self.cast.members[elder],
                    category=category,
                    window_start=start,
                    window_end=start + dt.timedelta(minutes=length),
                    funding=funding,
                    payer=payer,
                    notes=NOTES.get(category, ""),
                )
            )

        with clock.replay_at(_past(min(posted_at, start - dt.timedelta(hours=2)))):
            if not _try(act):
                return None
        return orders[0]

    def take(self, order: ServiceOrder, volunteer: str, *, jinyang: bool) -> bool:
        member = self.cast.members[volunteer]
        with clock.replay_at(_past(order.window_start - dt.timedelta(hours=self.rng.randint(3, 30)))):
            if self.rng.random() < 0.7:
                return _try(lambda: care.order_accept(actor=self.cast.users[volunteer], order=order))
            staff = self.cast.hongkou if jinyang else self.cast.community
            return _try(lambda: care.order_assign(actor=staff, order=order, volunteer=member))

    def serve(self, order: ServiceOrder, volunteer: str, *, minutes: int, qr: bool) -> bool:
        user = self.cast.users[volunteer]
        token = ""
        if qr:
            card = ServiceOrderCards.card(order.elder)
            token = cards.card_token(card) if card else ""
        arrive = order.window_start + dt.timedelta(minutes=self.rng.randint(-5, 10))
        with clock.replay_at(arrive):
            if not _try(lambda: care.order_check_in(actor=user, order=order, token=token)):
                return False
        with clock.replay_at(arrive + dt.timedelta(minutes=minutes)):
            return _try(lambda: care.order_check_out(actor=user, order=order, token=token))

    def confirm(self, order: ServiceOrder, volunteer: str, elder: str) -> bool:
        order.refresh_from_db()
        assert order.checked_out_at is not None
        at = order.checked_out_at + dt.timedelta(minutes=self.rng.randint(1, 90))
        with clock.replay_at(at):
            if elder in self.cast.users and self.rng.random() < 0.6:
                return _try(
                    lambda: care.order_confirm(
                        actor=self.cast.users[elder], order=order, method=ConfirmMethod.DEVICE
                    )
                )
            if elder in self.cast.proxies and self.rng.random() < 0.5:
                proxy = self.cast.users[self.cast.proxies[elder]]
                return _try(lambda: care.order_confirm(actor=proxy, order=order, method=ConfirmMethod.PROXY))
            serial = ServiceOrderCards.card(order.elder)
            if serial and self.rng.random() < 0.5:
                code = ServiceOrderCards.next_code(order.elder, serial)
                return _try(
                    lambda: care.order_confirm(
                        actor=self.cast.users[volunteer],
                        order=order,
                        method=ConfirmMethod.CARD_CODE,
                        secret=code,
                    )
                )
            return _try(
                lambda: care.order_confirm(
                    actor=self.cast.users[volunteer],
                    order=order,
                    method=ConfirmMethod.PIN,
                    secret=self.cast.pins[elder],
                )
            )

    def review(self, order: ServiceOrder, *, jinyang: bool) -> None:
        order.refresh_from_db()
        assert order.checked_out_at is not None
        with clock.replay_at(order.checked_out_at + dt.timedelta(hours=self.rng.randint(16, 60))):
            if self.rng.random() < 0.03:
                _try(
                    lambda: care.order_reject(
                        actor=self.reviewer(jinyang), order=order, reason="服务记录与签到地点不符"
                    )
                )
            else:
                _try(lambda: care.order_approve(actor=self.reviewer(jinyang), order=order))

    def rate(self, order: ServiceOrder, volunteer: str, elder: str) -> None:
        order.refresh_from_db()
        if order.status not in {Status.CREDITED, Status.CONFIRMED} or order.checked_out_at is None:
            return
        with clock.replay_at(order.checked_out_at + dt.timedelta(hours=3)):
            if elder in self.cast.users and self.rng.random() < 0.6:
                stars = self.rng.choice([5, 5, 5, 4, 4, 3])
                _try(
                    lambda: care.order_rate(
                        actor=self.cast.users[elder], order=order, stars=stars, comment="谢谢，服务很贴心"
                    )
                )
            if self.rng.random() < 0.4:
                _try(
                    lambda: care.order_rate(
                        actor=self.cast.users[volunteer], order=order, stars=5, comment="老人很热情"
                    )
                )

    def full(self, day: dt.date, *, jinyang: bool, until: str = Status.CREDITED) -> ServiceOrder | None:
        """One service from request to ``until`` (or a state on the way: open, assigned, completed…)."""
        order = self._full(day, jinyang=jinyang, until=until)
        if order is not None:
            order.refresh_from_db()
        return order

    def _full(self, day: dt.date, *, jinyang: bool, until: str = Status.CREDITED) -> ServiceOrder | None:
        """The steps of ``full``; returns the order as the Python object last saw it."""
        elders = self.cast.jinyang_elders if jinyang else self.cast.yandang_elders
        volunteers = self.cast.jinyang_volunteers if jinyang else self.cast.yandang_volunteers
        categories = JINYANG_CATEGORIES if jinyang else YANDANG_CATEGORIES
        elder = self.rng.choice(elders)
        category = self.rng.choice(categories)
        length = self.rng.choice([60, 60, 90, 120])
        order = self.post(day, self.rng.randint(8, 16), elder, category, jinyang=jinyang, length=length)
        if order is None or until == Status.OPEN:
            return order
        volunteer = self.rng.choice(volunteers)
        if not self.take(order, volunteer, jinyang=jinyang) or until == Status.ASSIGNED:
            return order
        if not self.serve(
            order,
            volunteer,
            minutes=length + self.rng.choice([-15, -5, 0, 0, 10]),
            qr=self.rng.random() < 0.5,
        ):
            return order
        if until == Status.COMPLETED or not self.confirm(order, volunteer, elder):
            return order
        if until == Status.CONFIRMED:
            return order
        self.review(order, jinyang=jinyang)
        self.rate(order, volunteer, elder)
        order.refresh_from_db()
        return order


class ServiceOrderCards:
    """The demo's printed cards and which of their codes the elders have read out."""

    serials: dict[int, str] = {}
    used: dict[int, int] = {}

    @classmethod
    def card(cls, elder: Member) -> str | None:
        return cls.serials.get(elder.pk)

    @classmethod
    def next_code(cls, elder: Member, serial: str) -> str:
        number = cls.used.get(elder.pk, 0) + 1
        if number > cards.CODES_PER_CARD:
            number = 1
        cls.used[elder.pk] = number
        return cards.card_code(serial, number)


def replay_history(cast: Cast, rng: random.Random) -> dict[str, int]:
    """Twenty weeks of services, then today's unfinished work. Returns counts by final status."""
    replay = Replay(cast, rng)
    for name in cast.yandang_elders + cast.jinyang_elders:
        staff = cast.hongkou if name in cast.jinyang_elders else cast.community
        card = care.service_card_issue(actor=staff, elder=cast.members[name])
        ServiceOrderCards.serials[cast.members[name].pk] = card.serial
        ServiceOrderCards.used[cast.members[name].pk] = 0
        care.elder_pin_set(actor=staff, elder=cast.members[name], pin=cast.pins[name])
    today = replay.today
    start = today - dt.timedelta(days=HISTORY_DAYS)
    day = start
    credited: list[ServiceOrder] = []
    while day < today - dt.timedelta(days=3):
        for _ in range(rng.choice([0, 1, 1, 2])):
            order = replay.full(day, jinyang=False)
            if order is not None and order.status == Status.CREDITED:
                credited.append(order)
        if rng.random() < 0.5:
            order = replay.full(day, jinyang=True)
            if order is not None and order.status == Status.CREDITED:
                credited.append(order)
        day += dt.timedelta(days=1)

    _weekly_visits(cast, today)
    _paper_cards(cast, today)
    _disputes(cast, credited, rng)
    _loose_ends(replay, today)
    _today(replay, today)
    # what people were told weeks ago they have read by now
    Notification.objects.filter(created_at__lt=timezone.now() - dt.timedelta(days=3)).update(
        read_at=timezone.now()
    )
    counts: dict[str, int] = {}
    for status in ServiceOrder.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def _weekly_visits(cast: Cast, today: dt.date) -> None:
    """朱德林 lives alone without a phone: the station posted weekly home visits for him, paid by the public
    fund, and 张国强 goes every Wednesday."""
    elder = cast.members["朱德林"]
    volunteer = "张国强"
    first = today - dt.timedelta(days=(today.weekday() - 2) % 7 + 35)  # a Wednesday five weeks ago
    start = _moment(first, 15)
    with clock.replay_at(start - dt.timedelta(days=2)):
        orders = care.order_create(
            actor=cast.community,
            elder=elder,
            category="emotional_support",
            window_start=start,
            window_end=start + dt.timedelta(hours=1),
            funding=Funding.PUBLIC,
            notes="每周三下午上门探访，陪聊、检查用电安全",
            repeat_weeks=8,
        )
    for order in orders:
        assign = partial(
            care.order_assign, actor=cast.community, order=order, volunteer=cast.members[volunteer]
        )
        if order.window_end > timezone.now():
            with clock.replay_at(_past(order.window_start - dt.timedelta(days=1))):
                _try(assign)
            continue
        with clock.replay_at(order.window_start - dt.timedelta(days=1)):
            if not _try(assign):
                continue
        with clock.replay_at(order.window_start):
            care.order_check_in(actor=cast.users[volunteer], order=order)
        with clock.replay_at(order.window_start + dt.timedelta(minutes=55)):
            care.order_check_out(actor=cast.users[volunteer], order=order)
            care.order_confirm(
                actor=cast.users[volunteer], order=order, method=ConfirmMethod.PIN, secret=cast.pins["朱德林"]
            )
        with clock.replay_at(order.window_start + dt.timedelta(days=1)):
            care.order_approve(actor=cast.station, order=order)


PAPER_CSV_HEADER = ",".join(care.PAPER_COLUMNS)


def _paper_cards(cast: Cast, today: dt.date) -> None:
    """Services written on paper cards in the weeks before the station's volunteers had the app: entered in
    bulk from a CSV file, then approved."""
    rows = [PAPER_CSV_HEADER]
    lines = [
        ("吴建国", "马玉兰", "assistance", 165, 10, 60, "理发"),
        ("吴建国", "宋佩玲", "assistance", 163, 14, 45, "理发"),
        ("徐桂芳", "何春生", "culture_recreation", 158, 9, 90, "教写毛笔字"),
        ("黄志明", "高凤英", "legal_aid", 152, 15, 60, "咨询房屋继承"),
        ("郑雅琴", "马玉兰", "emotional_support", 147, 10, 60, "陪聊"),
    ]
    for volunteer, elder, category, days_ago, hour, minutes, note in lines:
        day = today - dt.timedelta(days=days_ago)
        end = (dt.datetime.combine(day, dt.time(hour)) + dt.timedelta(minutes=minutes + 10)).time()
        funding = Funding.PUBLIC if elder in cast.priority else Funding.OWN
        rows.append(
            f"P-{days_ago:03d},{cast.members[volunteer].mobile},{_ref(cast.members[elder])},{category},"
            f"{day.isoformat()},{hour:02d}:00,{end:%H:%M},10,{funding},,{note}"
        )
    with clock.replay_at(_moment(today - dt.timedelta(days=HISTORY_DAYS - 2), 10)):
        report = care.paper_import(actor=cast.community, text="\n".join(rows) + "\n")
        care.orders_approve(actor=cast.station, orders=report.created)


def _ref(member: Member) -> str:
    """How a paper card names a member: the mobile number, or for those without one the station's roster
    number (here: the member's mobile is empty, so the importer is given the ID number)."""
    if member.mobile:
        return member.mobile
    from timebank.people.crypto import decrypt_text

    return decrypt_text(member.id_number_cipher)


def _disputes(cast: Cast, credited: list[ServiceOrder], rng: random.Random) -> None:
    """Three complaints about credited services: one void (reversed), one corrected, one still open."""
    yandang = [o for o in credited if o.region.code == "310101023001"]
    if len(yandang) < 6:
        return
    picks = rng.sample(yandang[:-3], 3)
    for order, outcome, complaint in zip(
        picks, [Outcome.VOID, Outcome.CORRECTED, None], COMPLAINTS, strict=True
    ):
        order.refresh_from_db()
        assert order.checked_out_at is not None
        raiser = cast.users.get(order.elder.name) or cast.community
        with clock.replay_at(order.checked_out_at + dt.timedelta(days=3)):
            dispute = care.order_dispute(actor=raiser, order=order, reason=complaint)
        if outcome is None:
            continue
        with clock.replay_at(order.checked_out_at + dt.timedelta(days=5)):
            care.dispute_resolve(
                actor=cast.station,
                dispute=dispute,
                outcome=outcome,
                resolution="核实后处理：电话回访老人并查看签到记录",
                corrected_minutes=30 if outcome == Outcome.CORRECTED else None,
            )


def _loose_ends(replay: Replay, today: dt.date) -> None:
    """The other ways a service ends: cancelled, expired, a no-show."""
    order = _assigned(replay, today - dt.timedelta(days=20), jinyang=False)
    cancel = partial(care.order_cancel, actor=replay.cast.community, order=order, reason="老人住院，暂停服务")
    with clock.replay_at(order.window_start - dt.timedelta(hours=2)):
        cancel()
    replay.full(today - dt.timedelta(days=12), jinyang=False, until=Status.OPEN)
    care.orders_expire()
    order = _assigned(replay, today - dt.timedelta(days=9), jinyang=True)
    no_show = partial(care.order_no_show, actor=replay.cast.hongkou, order=order, note="志愿者临时生病未到")
    with clock.replay_at(order.window_end + dt.timedelta(hours=1)):
        no_show()


def _assigned(replay: Replay, day: dt.date, *, jinyang: bool) -> ServiceOrder:
    return _reach(replay, day, jinyang=jinyang, status=Status.ASSIGNED)


def _reach(replay: Replay, day: dt.date, *, jinyang: bool, status: str) -> ServiceOrder:
    """A service brought to ``status`` (the replay tries again when the rules refused a step: a volunteer
    busy at that hour, savings short)."""
    for _attempt in range(20):
        order = replay.full(day, jinyang=jinyang, until=status)
        if order is not None and order.status == status:
            return order
    raise RuntimeError("the demo could not arrange a service")


def _today(replay: Replay, today: dt.date) -> None:
    """Unfinished work as of today: services waiting for confirmation (one escalated), a review queue,
    requests taken for the coming days and requests still open."""
    _reach(replay, today - dt.timedelta(days=3), jinyang=False, status=Status.COMPLETED)
    care.orders_escalate()
    for back in (2, 1, 1):
        _reach(replay, today - dt.timedelta(days=back), jinyang=False, status=Status.COMPLETED)
    for back in (3, 2, 2, 1):
        _reach(replay, today - dt.timedelta(days=back), jinyang=back == 2, status=Status.CONFIRMED)
    for ahead in (1, 2, 3):
        _reach(replay, today + dt.timedelta(days=ahead), jinyang=ahead == 3, status=Status.ASSIGNED)
    for ahead in (1, 2, 4, 5, 6):
        _reach(replay, today + dt.timedelta(days=ahead), jinyang=ahead == 4, status=Status.OPEN)
