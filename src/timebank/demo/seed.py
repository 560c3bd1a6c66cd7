"""A living demo: a Shanghai community (雁荡居委会, Huangpu) and one in Hongkou (晋阳居委会, where the 1998
time-savings model began), with staff of every role, volunteers, elders and families.

Everything is written through the real services, so the demo's audit log reads like a real station's.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from timebank.care import services as care
from timebank.demo.history import Cast, replay_history
from timebank.demo.sensing import sensors_seed
from timebank.exchange import services as exchange
from timebank.exchange.models import Product, ProductKind, Redemption
from timebank.ledger import services as ledger
from timebank.ledger.models import AccountKind, TransactionKind
from timebank.ledger.sealing import ledger_seal_all
from timebank.people import services as people
from timebank.people.models import Member, PriorityGroup, Relation, Role, User
from timebank.people.validators import id_check_digit
from timebank.regions import services as regions
from timebank.regions.models import Policy, Region
from timebank.regions.selectors import region_get

DEMO_PASSWORD = "Yandang-2026"  # noqa: S105 - printed at start-up; demo data only
YANDANG = "310101023001"  # 雁荡居委会, 瑞金二路街道, 黄浦区
JINYANG = "310109018021"  # 晋阳居委会, 北外滩街道, 虹口区


@dataclass(frozen=True)
class Login:
    role: str
    username: str
    password: str
    scope: str


POLICIES = [
    ("shanghai-2026", "310000", dt.date(2026, 1, 1)),
    ("paper-tiered", "310109", dt.date(2026, 6, 1)),
    ("nanjing-2019", "320100", dt.date(2019, 7, 1)),
    ("beijing-2022", "110000", dt.date(2022, 1, 1)),
]

STAFF = [
    ("station", "王建华", Role.STATION_STAFF, "310101023", "13816000001"),
    ("community", "陈丽萍", Role.COMMUNITY_STAFF, YANDANG, "13816000002"),
    ("operator", "刘志强", Role.OPERATOR, "310101", "13816000003"),
    ("auditor", "赵敏", Role.AUDITOR, "310000", "13816000004"),
    ("hongkou", "孙卫东", Role.STATION_STAFF, "310109018", "13816000005"),
]

# name, sex, birth year, volunteer, elder, mobile, skills, priority groups
YANDANG_PEOPLE = [
    ("李秀英", "F", 1958, True, False, "13901000001", ["陪聊", "读报"], []),
    ("张国强", "M", 1960, True, False, "13901000002", ["维修", "陪同就医"], []),
    ("周美华", "F", 1962, True, False, "13901000003", ["手机教学", "防诈骗宣传"], []),
    ("吴建国", "M", 1957, True, False, "13901000004", ["理发"], []),
    ("郑雅琴", "F", 1965, True, False, "13901000005", ["心理疏导"], []),
    ("黄志明", "M", 1963, True, False, "13901000006", ["法律咨询"], []),
    ("徐桂芳", "F", 1959, True, True, "13901000007", ["书法"], []),
    ("朱德林", "M", 1940, False, True, "", [], [PriorityGroup.LIVING_ALONE, PriorityGroup.ADVANCED_AGE]),
    ("马玉兰", "F", 1938, False, True, "", [], [PriorityGroup.ADVANCED_AGE]),
    ("胡文彬", "M", 1944, False, True, "13901000010", [], [PriorityGroup.DISABLED]),
    ("林淑珍", "F", 1946, False, True, "13901000011", [], [PriorityGroup.LIVING_ALONE]),
    ("何春生", "M", 1942, False, True, "", [], [PriorityGroup.LOW_INCOME, PriorityGroup.LIVING_ALONE]),
    ("高凤英", "F", 1948, False, True, "13901000013", [], []),
    ("罗金宝", "M", 1950, False, True, "13901000014", [], []),
    ("宋佩玲", "F", 1939, False, True, "", [], [PriorityGroup.DISABLED, PriorityGroup.ADVANCED_AGE]),
    ("朱晓东", "M", 1975, False, False, "13901000016", [], []),
    ("林海燕", "F", 1979, True, False, "13901000017", ["做饭"], []),
    ("胡静", "F", 1982, False, False, "13901000018", [], []),
]
JINYANG_PEOPLE = [
    ("钱玉珍", "F", 1956, True, False, "13902000001", ["陪聊"], []),
    ("冯家宝", "M", 1961, True, False, "13902000002", ["买菜", "送餐"], []),
    ("褚凤仙", "F", 1936, False, True, "", [], [PriorityGroup.LIVING_ALONE, PriorityGroup.ADVANCED_AGE]),
    ("卫长根", "M", 1943, False, True, "13902000004", [], [PriorityGroup.LOW_INCOME]),
    ("蒋秀兰", "F", 1947, False, True, "13902000005", [], []),
]
# (member, relative, relation: relative is member's ...), verified?
BONDS = [
    ("朱德林", "朱晓东", Relation.CHILD, True),
    ("林淑珍", "林海燕", Relation.CHILD, True),
    ("胡文彬", "胡静", Relation.GRANDCHILD, True),
    ("徐桂芳", "罗金宝", Relation.SPOUSE, False),
    ("高凤英", "李秀英", Relation.FRIEND, False),
]
# An elder who signs in the way the station set her up: her mobile number and a six-digit PIN.
PIN_ELDER, PIN_ELDER_MOBILE, PIN_ELDER_PIN = "高凤英", "13901000013", "582037"
MEMBER_LOGINS = [("李秀英", "volunteer"), ("林淑珍", "elder"), ("林海燕", "family")]
# Sign-ins of the other volunteers and relatives who use the app (same password, not printed).
MORE_LOGINS = [
    ("张国强", "zhang-guoqiang"),
    ("周美华", "zhou-meihua"),
    ("吴建国", "wu-jianguo"),
    ("郑雅琴", "zheng-yaqin"),
    ("黄志明", "huang-zhiming"),
    ("徐桂芳", "xu-guifang"),
    ("钱玉珍", "qian-yuzhen"),
    ("冯家宝", "feng-jiabao"),
    ("朱晓东", "zhu-xiaodong"),
    ("胡静", "hu-jing"),
]
CERTIFICATIONS = [
    ("周美华", "counsellor"),
    ("钱玉珍", "counsellor"),
    ("冯家宝", "care_worker"),
    ("黄志明", "lawyer"),
]
# Donations to the mutual-aid pools (the Shanghai policy's pool is the city's; the tiered one, Hongkou's).
DONATIONS = [("李秀英", 600), ("张国强", 300), ("钱玉珍", 600)]
# Public fund budgets (minutes) by region, for this year and next.
BUDGETS = [("310101", 60_000), ("310109", 30_000)]
PINS = {
    "徐桂芳": "3719",
    "朱德林": "5820",
    "马玉兰": "4096",
    "胡文彬": "7351",
    "林淑珍": "2684",
    "何春生": "9042",
    "高凤英": "6158",
    "罗金宝": "8273",
    "宋佩玲": "1597",
    "褚凤仙": "3068",
    "卫长根": "7415",
    "蒋秀兰": "5293",
}


def _id_number(district: str, birth: dt.date, sex: str, serial: int) -> str:
    seq = f"{serial % 100:02d}{(1 if sex == 'M' else 0) + 2 * (serial % 4)}"
    first17 = f"{district}{birth:%Y%m%d}{seq}"
    return first17 + id_check_digit(first17)


def demo_logins() -> list[Login]:
    logins = [Login("platform_admin", "admin", DEMO_PASSWORD, "—")]
    for username, _name, role, code, _mobile in STAFF:
        logins.append(Login(str(role), username, DEMO_PASSWORD, code))
    for _name, username in MEMBER_LOGINS:
        logins.append(Login("member", username, DEMO_PASSWORD, YANDANG))
    logins.append(Login("merchant_staff", "shop", DEMO_PASSWORD, JINYANG))
    logins.append(Login("elder_pin", PIN_ELDER_MOBILE, PIN_ELDER_PIN, YANDANG))
    return logins


def demo_is_seeded() -> bool:
    return User.objects.filter(username="admin").exists() and Region.objects.filter(code=YANDANG).exists()


@transaction.atomic
def seed_demo(*, history: bool = True) -> list[Login]:
    """Create the demo community and (unless ``history`` is False) twenty weeks of its care services. Safe
    to run twice: a seeded database is left alone."""
    if demo_is_seeded():
        return demo_logins()
    rng = random.Random(1998)
    regions.regions_import_shipped(actor=None, name="shanghai")
    regions.regions_import_shipped(actor=None, name="other-cities")
    for preset, code, since in POLICIES:
        region = region_get(code)
        if not Policy.objects.filter(region=region, preset=preset).exists():
            regions.policy_load_preset(actor=None, preset=preset, region=region, effective_from=since)

    admin = User.objects.create_superuser("admin", email="", password=DEMO_PASSWORD, first_name="平台管理员")
    staff: dict[str, User] = {}
    for username, name, role, code, mobile in STAFF:
        user = people.staff_user_create(
            actor=admin, username=username, password=DEMO_PASSWORD, name=name, mobile=mobile
        )
        people.staff_grant_create(actor=admin, user=user, role=role, region=region_get(code))
        staff[username] = user

    members = {}
    serial = 0
    for community, rows, registrar, district in (
        (YANDANG, YANDANG_PEOPLE, staff["community"], "310101"),
        (JINYANG, JINYANG_PEOPLE, staff["hongkou"], "310109"),
    ):
        home = region_get(community)
        street = "雁荡路" if community == YANDANG else "长阳路"
        for name, sex, year, volunteer, elder, mobile, skills, groups in rows:
            serial += 1
            birth = dt.date(year, rng.randint(1, 12), rng.randint(1, 28))
            member = people.member_register(
                actor=registrar,
                name=name,
                home_region=home,
                mobile=mobile,
                id_number=_id_number(district, birth, sex, serial),
                address=f"{street}{rng.randint(1, 120)}弄{rng.randint(1, 40)}号",
                languages=["普通话", "上海话"],
                skills=skills,
                is_volunteer=volunteer,
                is_elder=elder,
                emergency_contact_name="" if not elder else "居委会值班室",
                emergency_contact_mobile="" if not elder else "13816000002",
                health_notes="高血压，需按时服药" if elder and serial % 3 == 0 else "",
            )
            members[name] = member
            for group in groups:
                people.priority_group_verify(
                    actor=registrar, member=member, group=group, note="入户核查，材料齐全"
                )
    for member_name, relative_name, relation, verified in BONDS:
        bond = people.family_bond_propose(
            actor=staff["community"],
            member=members[member_name],
            relative=members[relative_name],
            relation=relation,
        )
        if verified:
            people.family_bond_decide(actor=staff["station"], bond=bond, approve=True)
    for name, username in MEMBER_LOGINS:
        people.member_sign_in_create(
            actor=staff["community"], member=members[name], username=username, password=DEMO_PASSWORD
        )
    people.member_sign_in_pin_set(actor=staff["community"], member=members[PIN_ELDER], pin=PIN_ELDER_PIN)
    for name, username in MORE_LOGINS:
        registrar = staff["hongkou"] if members[name].home_region.code == JINYANG else staff["community"]
        people.member_sign_in_create(
            actor=registrar, member=members[name], username=username, password=DEMO_PASSWORD
        )
    _seed_ledger(members)
    _seed_shops(admin)
    if history:
        _seed_care(staff, members, admin, rng)
    sensors_seed(
        registrar=staff["community"],
        reviewer=staff["station"],
        region=region_get(YANDANG),
        members=members,
        history=history,
    )
    return demo_logins()


def _seed_care(staff: dict[str, User], members: dict[str, Member], admin: User, rng: random.Random) -> None:
    """Certifications, budgets, pool donations, then twenty weeks of services replayed (see history.py)."""
    for name, code in CERTIFICATIONS:
        registrar = staff["hongkou"] if members[name].home_region.code == JINYANG else staff["station"]
        care.certification_grant(actor=registrar, member=members[name], code=code)
    year = timezone.localdate().year
    for code, minutes in BUDGETS:
        for budget_year in (year, year + 1):
            care.fund_budget_set(
                actor=admin, region=region_get(code), year=budget_year, limit_minutes=minutes
            )
    users_by_member = {u.member_id: u for u in User.objects.filter(member__in=members.values())}
    for name, minutes in DONATIONS:
        member = members[name]
        exchange.donation_create(
            actor=users_by_member.get(member.pk) or staff["station"],
            giver=member,
            minutes=minutes,
            idempotency_key=f"demo-donation-{member.pk}",
        )
    names = {m.pk: n for n, m in members.items()}
    users = {names[u.member_id]: u for u in User.objects.filter(member__in=members.values()) if u.member_id}
    yandang = [n for n, m in members.items() if m.home_region.code == YANDANG]
    jinyang = [n for n, m in members.items() if m.home_region.code == JINYANG]
    cast = Cast(
        station=staff["station"],
        community=staff["community"],
        hongkou=staff["hongkou"],
        members=members,
        users=users,
        yandang_volunteers=[n for n in yandang if members[n].is_volunteer and n in users],
        jinyang_volunteers=[n for n in jinyang if members[n].is_volunteer and n in users],
        yandang_elders=[n for n in yandang if members[n].is_elder],
        jinyang_elders=[n for n in jinyang if members[n].is_elder],
        priority={
            n for n, m in members.items() if m.priority_statuses.filter(verified_at__isnull=False).exists()
        },
        pins=PINS,
        proxies={"林淑珍": "林海燕", "朱德林": "朱晓东", "胡文彬": "胡静"},
        payers={"林淑珍": "林海燕"},
    )
    replay_history(cast, rng)
    _seed_exchange(staff, members, admin, users_by_member)


# The 晋阳 corner shop (the tiered policy allows goods): product, price in minutes, stock.
SHOP_GOODS = [
    ("大米 5 公斤", "Rice, 5 kg", 120, 20),
    ("食用油 1.8 升", "Cooking oil, 1.8 l", 90, 15),
    ("鸡蛋 30 枚", "Eggs, 30", 45, 30),
    ("理发券", "Haircut voucher", 60, 10),
]


def _seed_shops(admin: User) -> None:
    """A partner shop in 晋阳 (the tiered policy allows goods) with its clerk, and the district care home
    whose admission is a special right."""
    jinyang = region_get(JINYANG)
    shop = exchange.merchant_create(
        actor=admin,
        name="长阳路便民超市",
        region=jinyang,
        address="长阳路 88 号",
        opening_hours="每天 8:00–20:00",
    )
    clerk = people.staff_user_create(actor=admin, username="shop", password=DEMO_PASSWORD, name="杨店员")
    exchange.merchant_staff_add(actor=admin, merchant=shop, user=clerk)
    for name, name_en, price, stock in SHOP_GOODS:
        exchange.product_save(
            actor=clerk, merchant=shop, name=name, name_en=name_en, price_minutes=price, stock=stock
        )
    home = exchange.merchant_create(
        actor=admin,
        name="虹口区社会福利院",
        region=region_get("310109"),
        address="虹口区…",
        opening_hours="工作日",
    )
    exchange.product_save(
        actor=admin,
        merchant=home,
        name="福利院优先入住资格",
        name_en="Priority admission to the district care home",
        price_minutes=600_000,
        stock=2,
        kind=ProductKind.RIGHT,
    )


def _seed_exchange(
    staff: dict[str, User], members: dict[str, Member], admin: User, users: dict[int | None, User]
) -> None:
    """A partner shop in 晋阳 with goods and a clerk, a special right, redemptions in every state, a family
    transfer, a pool allocation, a purchase with money, the city's guarantee fund and a move."""
    clerk = User.objects.get(username="shop")
    products = {p.name: p for p in Product.objects.filter(merchant__staff=clerk)}

    def order(name: str, product: str) -> Redemption:
        member = members[name]
        return exchange.redemption_order(actor=users[member.pk], member=member, product=products[product])

    exchange.redemption_hand_over(actor=clerk, token=exchange.pickup_token(order("钱玉珍", "大米 5 公斤")))
    exchange.redemption_hand_over(actor=clerk, token=exchange.pickup_token(order("冯家宝", "理发券")))
    order("冯家宝", "食用油 1.8 升")  # waiting at the shop
    exchange.redemption_cancel(
        actor=users[members["钱玉珍"].pk], redemption=order("钱玉珍", "鸡蛋 30 枚"), reason="买重了"
    )
    exchange.transfer_create(
        actor=users[members["林海燕"].pk],
        giver=members["林海燕"],
        receiver=members["林淑珍"],
        minutes=60,
        idempotency_key="demo-transfer-1",
        note="给妈妈",
    )
    exchange.donation_create(
        actor=users[members["李秀英"].pk],
        giver=members["李秀英"],
        minutes=300,
        idempotency_key="demo-donation-2",
    )
    exchange.pool_allocate(
        actor=staff["station"],
        elder=members["何春生"],
        minutes=120,
        reason="独居低保，冬季加强探访",
        idempotency_key="demo-allocation-1",
    )
    exchange.purchase_record(
        actor=staff["hongkou"],
        member=members["蒋秀兰"],
        amount_fen=4000,
        method="mobile",
        receipt_number="HK-2026-0001",
    )
    exchange.guarantee_fund_record(
        actor=admin,
        region=region_get("310000"),
        value_fen=10_000_000_00,
        fen_per_hour=3000,
        note="市级兜底保障资金（示例数额）",
    )
    exchange.member_move(
        actor=staff["station"], member=members["罗金宝"], to_region=region_get("310101023002")
    )


# Hours volunteers served before the platform, entered from the paper record cards (minutes).
OPENING = {
    "李秀英": 7_260,
    "张国强": 4_830,
    "周美华": 2_940,
    "吴建国": 1_500,
    "郑雅琴": 960,
    "黄志明": 600,
    "徐桂芳": 3_120,
    "林海燕": 420,
    "钱玉珍": 5_400,
    "冯家宝": 1_980,
    # elders who volunteered when they were younger
    "高凤英": 1_800,
    "罗金宝": 1_200,
    "蒋秀兰": 900,
}
GIFTS = [("林海燕", "林淑珍", 120, "给妈妈的陪伴时间"), ("李秀英", "高凤英", 60, "邻里互助")]


def _seed_ledger(members: dict[str, Member]) -> None:
    """Opening balances carried over from the paper cards, a few gifts, then everything sealed."""
    funds = {
        code: ledger.system_account(kind=AccountKind.PUBLIC_FUND, region=region_get(code))
        for code in ("310101", "310109")
    }
    for name, minutes in OPENING.items():
        member = members[name]
        assert member.account_id is not None
        ledger.transfer(
            idempotency_key=f"demo-opening-{member.pk}",
            source=funds[member.home_region.code[:6]].pk,
            destination=member.account_id,
            minutes=minutes,
            kind=TransactionKind.OPENING,
            memo="纸质服务记录卡迁移（1998–2025 年累计）",
            subject=f"member:{member.pk}",
        )
    for giver, receiver, minutes, memo in GIFTS:
        source, destination = members[giver].account_id, members[receiver].account_id
        assert source is not None and destination is not None
        ledger.transfer(
            idempotency_key=f"demo-gift-{giver}-{receiver}",
            source=source,
            destination=destination,
            minutes=minutes,
            kind=TransactionKind.GIFT,
            memo=memo,
        )
    transaction.on_commit(lambda: ledger_seal_all(settle_seconds=0))
