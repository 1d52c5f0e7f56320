"""Honest care that looks odd: what a municipality's controllers name when asked what looks wrong.

Why: a label-free detector flags what is unusual, and much of what is unusual in home care is
honest. The messy profile lays these patterns over its world, each at levels drawn from the
seed (`draw_honest_odd`), and records which pattern touched which invoice
(`SimulatedMunicipality.honest_patterns`, one row per invoice and pattern) so that a bench can
give a false-positive rate per pattern. Every invoice they touch stays regular (label 0), every
table stays within the data contract, and no carer is ever at two places at once:

- `double_staffing_both_registered`: two carers at once for heavy-care clients, both register
  the same visit (double-staffing clients and the heaviest personal-care clients); the invoice
  bills the visit once (the double-staffing rate pays for two), so registered hours double;
- `night_round_short_visits`: a night patrol checks on its clients several times a night in
  visits of a few minutes each, the night's care split into a round; it registers at the door
  by key tag and bills within the grant (only night care billed within its grant is put on a
  round, and quarter-hour registration never rounds the round's checks up);
- `staff_at_two_providers`: a carer working mornings at one provider and evenings at another
  (laid by the messy profile's staff sharing; recorded here);
- `quarter_hour_registration`: providers whose staff register their visits to the quarter hour,
  typed in afterwards (start and length on :00/:15/:30/:45), billing what they registered;
  a visit shorter than a quarter hour (a night check) keeps the times it was registered with,
  so that rounding never doubles or quadruples a few minutes' care into billing over the grant;
- `end_of_life_long_visits`: palliative clients' visits grow long in their last weeks, under a
  temporary grant increase;
- `discharge_grant_increase`: after a hospital stay a client gets a temporary grant increase
  and longer visits (reablement) for a few weeks;
- `holiday_cover_other_provider`: in the summer and Christmas holidays, evening carers on
  leave are covered by a morning carer of another provider.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tillit.simulate.messy import DrawnLevels, _period_number

HONEST_PATTERNS: tuple[str, ...] = (
    "double_staffing_both_registered",
    "night_round_short_visits",
    "staff_at_two_providers",
    "quarter_hour_registration",
    "end_of_life_long_visits",
    "discharge_grant_increase",
    "holiday_cover_other_provider",
)
_NS_PER_S = 10**9
_NS_PER_MIN = 60 * _NS_PER_S
_NS_PER_DAY = 24 * 60 * _NS_PER_MIN
_PATROL_CARERS = 3  # a provider's night patrol: carers taking turns by night
_KEY = ["provider_id", "client_id", "service_type", "period"]
# Holiday weeks (month, day) to (month, day), inclusive: summer leave and Christmas.
_HOLIDAYS = (((6, 22), (8, 16)), ((12, 20), (12, 31)), ((1, 1), (1, 6)))


@dataclass(frozen=True)
class HonestOddParameters(DrawnLevels):
    """How much honest-but-odd care one messy municipality has, drawn from its seed."""

    double_staffing_client_share: float  # of double-staffing clients, both carers register
    heavy_care_client_share: float  # of the heaviest tenth of personal-care clients
    night_round_client_share: float  # of night-care clients (per provider, at most 6)
    night_round_visits: int  # short visits per client and night
    quarter_hour_provider_share: float
    palliative_client_share: float  # of clients who die in the window
    palliative_days: int  # before death
    palliative_factor: float  # visit length multiplied by (bounded by the carer's next visit)
    discharge_client_share: float  # of clients discharged from hospital in the window
    discharge_days: int
    discharge_factor: float
    holiday_cover_pairs_per_provider: float


def draw_honest_odd(seed: int) -> HonestOddParameters:
    """Levels of honest-but-odd care for a messy municipality: a different draw for every seed."""
    rng = np.random.default_rng([seed, 20272])
    return HonestOddParameters(
        double_staffing_client_share=float(rng.uniform(0.3, 0.8)),
        heavy_care_client_share=float(rng.uniform(0.1, 0.4)),
        night_round_client_share=float(rng.uniform(0.3, 0.7)),
        night_round_visits=int(rng.integers(3, 7)),
        quarter_hour_provider_share=float(rng.uniform(0.05, 0.2)),
        palliative_client_share=float(rng.uniform(0.3, 0.8)),
        palliative_days=int(rng.integers(21, 46)),
        palliative_factor=float(rng.uniform(1.5, 2.5)),
        discharge_client_share=float(rng.uniform(0.2, 0.6)),
        discharge_days=int(rng.integers(14, 43)),
        discharge_factor=float(rng.uniform(1.3, 2.0)),
        holiday_cover_pairs_per_provider=float(rng.uniform(0.2, 0.8)),
    )


def apply_honest_odd(
    tables: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    params: HonestOddParameters,
    seed: int,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Lay the honest-but-odd patterns over a (messy) world; returns the tables and who was hit.

    The second frame has one row per (invoice_id, pattern), regular invoices only.
    """
    rng = np.random.default_rng([seed, 20273])
    tables = dict(tables)
    invoices = tables["invoices"].copy()
    grants = tables["grants"].copy()
    regular_ids = set(
        truth.loc[~truth["irregular"].astype(bool), "invoice_id"].astype("str").to_numpy()
    )
    world = _World(tables["visits"].copy(), invoices, regular_ids)
    hits: list[pd.DataFrame] = []

    hits.append(_staff_at_two_providers(world))  # before holiday cover adds its own pairs
    hits.append(_double_staffing(rng, world, grants, params))
    hits.append(_night_rounds(rng, world, grants, params))
    hits.append(_quarter_hours(rng, world, params))
    clients = tables["clients"]
    deceased = clients.dropna(subset=["deceased_on"])
    chosen = deceased[rng.random(len(deceased)) < params.palliative_client_share]
    death = pd.to_datetime(chosen["deceased_on"])
    windows = pd.DataFrame(
        {
            "client_id": chosen["client_id"].astype("str").to_numpy(),
            "begin": (death - pd.Timedelta(days=params.palliative_days)).to_numpy(),
            "end": death.to_numpy(),  # visits on the day of death stay as they were
        }
    )
    grants = _lengthen_under_grant(
        rng, world, grants, windows, params.palliative_factor, "end_of_life_long_visits", hits
    )
    stays = tables.get("hospital_stays")
    if stays is not None and not stays.empty:
        out = stays.dropna(subset=["discharged_on"])
        out = out[rng.random(len(out)) < params.discharge_client_share]
        home = pd.to_datetime(out["discharged_on"]) + pd.Timedelta(days=1)
        windows = pd.DataFrame(
            {
                "client_id": out["client_id"].astype("str").to_numpy(),
                "begin": home.to_numpy(),
                "end": (home + pd.Timedelta(days=params.discharge_days)).to_numpy(),
            }
        )
        grants = _lengthen_under_grant(
            rng, world, grants, windows, params.discharge_factor, "discharge_grant_increase", hits
        )
    hits.append(_holiday_cover(rng, world, params))

    tables["visits"] = world.visits.reset_index(drop=True)
    tables["invoices"] = world.invoices
    tables["grants"] = grants.reset_index(drop=True)
    touched = pd.concat(hits, ignore_index=True).drop_duplicates()
    touched = touched.sort_values(["pattern", "invoice_id"], kind="stable").reset_index(drop=True)
    return tables, touched.astype({"invoice_id": "str", "pattern": "str"})


class _World:
    """The visits being changed, the invoices they belong to and which of those are regular."""

    def __init__(self, visits: pd.DataFrame, invoices: pd.DataFrame, regular: set[str]) -> None:
        self.visits = visits.reset_index(drop=True)
        self.invoices = invoices
        self.regular = pd.Index(sorted(regular))
        # No pattern moves a visit to another month, provider, client or service: the invoice
        # of each visit is looked up once and carried by the rows a pattern adds.
        self.invoice = self._lookup()
        self.regular_visit = pd.Index(self.invoice).isin(self.regular)
        # Invoices whose visits are registered at the door (a night patrol's key tag): nobody
        # types them in afterwards, so quarter-hour registration leaves them alone.
        self.on_the_spot: set[str] = set()
        self._next = {
            column: _largest_number(self.visits[column], prefix) + 1
            for column, prefix in (("staff_id", "S"), ("visit_id", "V"))
        }

    def replace(self, keep: np.ndarray, added: pd.DataFrame, added_invoice: np.ndarray) -> None:
        """Keep some visits, append new ones billed on the given invoices."""
        self.visits = pd.concat([self.visits[keep], added], ignore_index=True)
        self.invoice = np.concatenate([self.invoice[keep], added_invoice])
        self.regular_visit = np.concatenate(
            [self.regular_visit[keep], pd.Index(added_invoice).isin(self.regular)]
        )

    def _lookup(self) -> np.ndarray:
        """The invoice each visit is billed on (by provider, client, service, month), or ''."""
        v = self.visits
        key = v[["provider_id", "client_id", "service_type"]].astype("str")
        start = v["start_at"]
        key = key.assign(period=(start.dt.year * 100 + start.dt.month).to_numpy())
        ids = self.invoices[[*_KEY, "invoice_id"]].astype("str")
        ids = ids.assign(period=_period_number(ids["period"]))
        found = key.merge(ids, on=_KEY, how="left")["invoice_id"]
        return found.fillna("").to_numpy().astype(object)

    def next_id(self, column: str, count: int) -> int:
        """The first of `count` fresh numbers for new staff or visit ids."""
        first = self._next[column]
        self._next[column] = first + count
        return first

    def rebill(self, invoice_ids: np.ndarray, hours: np.ndarray) -> None:
        """Honest providers bill what they registered: add the registered change to the invoice."""
        delta = pd.Series(hours).groupby(invoice_ids).sum()
        ids = self.invoices["invoice_id"].astype("str")
        change = ids.map(delta).fillna(0.0).to_numpy()
        billed = self.invoices["billed_hours"].to_numpy()
        amount = self.invoices["amount_sek"].to_numpy()
        rate = np.where(billed > 0, amount / np.maximum(billed, 1e-9), 0.0)
        new_billed = np.clip(np.round(billed + change, 2), 0.0, 744.0)
        new_amount = np.maximum(amount + (new_billed - billed) * rate, 0.0)
        whole = np.isclose(amount, np.round(amount))
        new_amount = np.where(whole, np.round(new_amount), np.round(new_amount, 2))
        self.invoices["billed_hours"] = new_billed
        self.invoices["amount_sek"] = np.where(change != 0, new_amount, amount)


def _largest_number(ids: pd.Series, prefix: str) -> int:
    """The largest number in ids of the form prefix + digits (0 when there is none)."""
    text = ids.astype("str")
    text = text[text.str.startswith(prefix)]
    if text.empty:
        return 0
    longest = text[text.str.len() == text.str.len().max()].max()  # same length: order is numeric
    digits = str(longest)[len(prefix) :]
    return int(digits) if digits.isdigit() else 0


def _hits(invoice_ids: np.ndarray, pattern: str) -> pd.DataFrame:
    ids = pd.unique(pd.Series(invoice_ids, dtype=object))
    ids = [i for i in ids if i]
    return pd.DataFrame({"invoice_id": ids, "pattern": pattern})


def _granted_hours(invoices: pd.DataFrame, grants: pd.DataFrame) -> np.ndarray:
    """Per invoice: hours granted for its provider, client, service and month, each grant pro
    rata by the days it held in the month (as an auditor, and the features, count them)."""
    period = pd.PeriodIndex(invoices["period"].astype("str"), freq="M")
    first = period.start_time.normalize().to_numpy()
    last = period.end_time.normalize().to_numpy()
    days = period.days_in_month.to_numpy()
    key = ["provider_id", "client_id", "service_type"]
    inv = invoices[key].astype("str").assign(_row=np.arange(len(invoices)))
    inv = inv.assign(_first=first, _last=last, _days=days)
    g = grants[[*key, "hours_per_month", "valid_from", "valid_to"]].astype({c: "str" for c in key})
    pairs = inv.merge(g, on=key)
    day = np.timedelta64(1, "D")
    begin = np.maximum(_days_of(pairs["valid_from"]), _days_of(pairs["_first"]))
    until = pd.to_datetime(pairs["valid_to"]).fillna(pd.Timestamp("2262-01-01"))
    end = np.minimum(_days_of(until), _days_of(pairs["_last"]))
    held = (end - begin) // day + 1
    hours = pairs["hours_per_month"].to_numpy() * np.clip(held, 0, None) / pairs["_days"]
    per_row = pd.Series(hours).groupby(pairs["_row"].to_numpy()).sum()
    return per_row.reindex(np.arange(len(invoices)), fill_value=0.0).to_numpy()


def _days_of(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy("datetime64[ns]").astype("datetime64[D]")


def _ns(series: pd.Series) -> np.ndarray:
    return series.to_numpy("datetime64[ns]").astype(np.int64)


def _as_time(values: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=np.int64).astype("datetime64[ns]"))


def _times(visits: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Carer (as a number), start and end (ns) of every visit."""
    staff = pd.factorize(visits["staff_id"])[0]
    return staff, _ns(visits["start_at"]), _ns(visits["end_at"])


def _free_after(staff: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per visit: ns until the same carer's next visit starts (huge when none)."""
    order = np.lexsort((start, staff))
    s_staff, s_start = staff[order], start[order]
    nxt = np.r_[s_staff[1:] == s_staff[:-1], False]
    following = np.where(nxt, np.r_[s_start[1:], 0], np.iinfo(np.int64).max // 2)
    free = np.empty(staff.size, dtype=np.int64)
    free[order] = following - end[order]
    return free


def _free_before(staff: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Per visit: ns since the latest end of the same carer's earlier visits (huge when none)."""
    order = np.lexsort((start, staff))
    s_staff = staff[order]
    latest = pd.Series(end[order]).groupby(s_staff).cummax().to_numpy()
    first = np.r_[True, s_staff[1:] != s_staff[:-1]]
    previous_end = np.where(first, np.iinfo(np.int64).min // 2, np.r_[0, latest[:-1]])
    free = np.empty(staff.size, dtype=np.int64)
    free[order] = start[order] - previous_end
    return free


def _staff_at_two_providers(world: _World) -> pd.DataFrame:
    """Invoices with a visit by a carer who also works for another provider."""
    v = world.visits
    shared = v.groupby("staff_id")["provider_id"].transform("nunique").to_numpy() > 1
    ids = world.invoice
    return _hits(ids[shared & world.regular_visit], "staff_at_two_providers")


def _double_staffing(
    rng: np.random.Generator, world: _World, grants: pd.DataFrame, params: HonestOddParameters
) -> pd.DataFrame:
    """A second carer registers the same visit for heavy-care clients; the bill is unchanged."""
    v = world.visits
    ids = world.invoice
    regular = world.regular_visit
    pairs = v[["provider_id", "client_id"]].astype("str").drop_duplicates()
    pairs = pairs.sort_values(["provider_id", "client_id"]).reset_index(drop=True)
    pc = grants[grants["service_type"] == "personal_care"]
    heavy_clients = set(
        pc.loc[pc["hours_per_month"] >= pc["hours_per_month"].quantile(0.9), "client_id"]
    )
    draw = rng.random(len(pairs))
    chosen_ds = pairs[draw < params.double_staffing_client_share]
    chosen_pc = pairs[
        pairs["client_id"].isin(heavy_clients) & (draw < params.heavy_care_client_share)
    ]
    service = v["service_type"].astype("str")
    pair_key = v["provider_id"].astype("str") + "|" + v["client_id"].astype("str")
    ds_keys = set(chosen_ds["provider_id"] + "|" + chosen_ds["client_id"])
    pc_keys = set(chosen_pc["provider_id"] + "|" + chosen_pc["client_id"])
    hit = (
        regular
        & (
            ((service == "double_staffing") & pair_key.isin(ds_keys))
            | ((service == "personal_care") & pair_key.isin(pc_keys))
        ).to_numpy()
    )
    if not hit.any():
        return _hits(np.array([], dtype=object), "double_staffing_both_registered")
    second = v[hit].copy()
    originals = np.sort(second["staff_id"].astype("str").unique())
    first_number = world.next_id("staff_id", len(originals))
    partner = {s: f"S{first_number + i:05d}" for i, s in enumerate(originals)}
    second["staff_id"] = second["staff_id"].astype("str").map(partner).astype("str")
    # The partner checks out before the next double visit starts (the first carer may not).
    start, end = _ns(second["start_at"]), _ns(second["end_at"])
    free = _free_after(*_times(second))
    end = np.minimum(end, end + free - _NS_PER_MIN)
    keep = end - start >= 2 * _NS_PER_MIN
    second = second[keep].copy()
    second["end_at"] = _as_time(end[keep]).to_numpy()
    first_visit = world.next_id("visit_id", len(second))
    second["visit_id"] = [f"V{first_visit + i:07d}" for i in range(len(second))]
    world.replace(np.ones(len(v), dtype=bool), second, ids[hit][keep])
    return _hits(ids[hit], "double_staffing_both_registered")


def _night_rounds(
    rng: np.random.Generator, world: _World, grants: pd.DataFrame, params: HonestOddParameters
) -> pd.DataFrame:
    """A patrol per provider replaces chosen clients' night visits by rounds of short checks.

    An honest patrol bills its grant: only night care billed within the month's grant is put
    on a round (the round keeps the registered minutes and the bill), and the patrol's carers
    take turns by night, as a night shift does, rather than one carer every night.
    """
    v = world.visits
    ids = world.invoice
    granted = _granted_hours(world.invoices, grants)
    billed = world.invoices["billed_hours"].to_numpy()
    within = world.invoices.loc[billed <= granted + 1e-9, "invoice_id"].astype("str")
    night = (v["service_type"].astype("str") == "night_care").to_numpy() & world.regular_visit
    night &= pd.Index(ids).isin(within)
    pairs = v.loc[night, ["provider_id", "client_id"]].astype("str").drop_duplicates()
    pairs = pairs.sort_values(["provider_id", "client_id"]).reset_index(drop=True)
    pairs = pairs[rng.random(len(pairs)) < params.night_round_client_share]
    pairs = pairs.groupby("provider_id").head(6)
    pair_key = v["provider_id"].astype("str") + "|" + v["client_id"].astype("str")
    hit = night & pair_key.isin(set(pairs["provider_id"] + "|" + pairs["client_id"])).to_numpy()
    if not hit.any():
        return _hits(np.array([], dtype=object), "night_round_short_visits")
    old = v[hit]
    start, end = _ns(old["start_at"]), _ns(old["end_at"])
    nights = (
        pd.DataFrame(
            {
                "provider_id": old["provider_id"].astype("str").to_numpy(),
                "client_id": old["client_id"].astype("str").to_numpy(),
                "day": start // _NS_PER_DAY,
                "seconds": (end - start) // _NS_PER_S,
            }
        )
        .groupby(["provider_id", "day", "client_id"], as_index=False)["seconds"]
        .sum()
    )
    providers = np.sort(nights["provider_id"].unique())
    patrol_first = world.next_id("staff_id", _PATROL_CARERS * len(providers))
    patrol = {
        p: [f"S{patrol_first + _PATROL_CARERS * i + j:05d}" for j in range(_PATROL_CARERS)]
        for i, p in enumerate(providers)
    }
    rows: list[tuple[str, str, str, int, int]] = []
    travel = 4 * 60
    for (provider, day), group in nights.groupby(["provider_id", "day"], sort=True):
        seconds = group["seconds"].to_numpy()
        k = np.clip(seconds // 120, 1, params.night_round_visits).astype(np.int64)
        pieces = [
            np.full(n, s // n) + np.r_[s % n, np.zeros(n - 1, np.int64)]
            for s, n in zip(seconds, k, strict=True)
        ]
        round_len = int(sum(int(p.max()) for p in pieces)) + travel * len(pieces)
        gap = max(75 * 60, round_len + 10 * 60)
        at = int(day) * 86400 + 20 * 60
        carer = patrol[provider][int(day) % _PATROL_CARERS]
        for r in range(int(k.max())):
            t = at + r * gap
            for client, piece in zip(group["client_id"], pieces, strict=True):
                if r < piece.size:
                    rows.append((provider, client, carer, t, int(piece[r])))
                    t += int(piece[r]) + travel
                else:
                    t += travel
    new = pd.DataFrame(rows, columns=["provider_id", "client_id", "staff_id", "s", "d"])
    first_visit = world.next_id("visit_id", len(new))
    added = pd.DataFrame(
        {
            "visit_id": [f"V{first_visit + i:07d}" for i in range(len(new))],
            "provider_id": new["provider_id"],
            "client_id": new["client_id"],
            "staff_id": new["staff_id"],
            "service_type": "night_care",
            "start_at": _as_time(new["s"].to_numpy() * _NS_PER_S),
            "end_at": _as_time((new["s"] + new["d"]).to_numpy() * _NS_PER_S),
            "method": "nfc",
        }
    ).astype(
        {
            c: "str"
            for c in ("visit_id", "provider_id", "client_id", "staff_id", "service_type", "method")
        }
    )
    night_of = (
        old["provider_id"].astype("str").to_numpy()
        + "|"
        + old["client_id"].astype("str").to_numpy()
        + "|"
        + pd.Series(start // _NS_PER_DAY).astype("str").to_numpy()
    )
    invoice_of_night = pd.Series(ids[hit]).groupby(night_of).first()
    added_invoice = (
        new["provider_id"] + "|" + new["client_id"] + "|" + (new["s"] // 86400).astype("str")
    ).map(invoice_of_night)
    world.replace(~hit, added, added_invoice.to_numpy().astype(object))
    world.on_the_spot.update(str(i) for i in ids[hit])
    return _hits(ids[hit], "night_round_short_visits")


def _quarter_hours(
    rng: np.random.Generator, world: _World, params: HonestOddParameters
) -> pd.DataFrame:
    """Some providers' staff type their visits in to the quarter hour; they bill what they typed.

    Visits shorter than a quarter hour, and a night patrol's checks registered at the door,
    keep their times: rounding a few minutes up to a quarter would bill several times the care.
    """
    v = world.visits
    ids = world.invoice
    providers = np.sort(v["provider_id"].astype("str").unique())
    chosen = providers[rng.random(providers.size) < params.quarter_hour_provider_share]
    quarter = 15 * _NS_PER_MIN
    staff, start, end = _times(v)
    new_start = np.round(start / quarter).astype(np.int64) * quarter
    length = np.maximum(np.round((end - start) / quarter).astype(np.int64), 1) * quarter
    new_end = new_start + length
    hit = v["provider_id"].astype("str").isin(set(chosen)).to_numpy() & world.regular_visit
    hit &= (end - start >= quarter) & ~pd.Index(ids).isin(sorted(world.on_the_spot))
    hit &= new_start // _NS_PER_DAY == start // _NS_PER_DAY  # never into another day or month
    # Only visits clear of the carer's others, and rounding never moves one into another:
    # a rounded visit that would touch a neighbour keeps its times (until none does).
    hit &= (_free_after(staff, start, end) >= 0) & (_free_before(staff, start, end) >= 0)
    for _ in range(20):
        s_now, e_now = np.where(hit, new_start, start), np.where(hit, new_end, end)
        clash = hit & (
            (_free_after(staff, s_now, e_now) < 0) | (_free_before(staff, s_now, e_now) < 0)
        )
        if not clash.any():
            break
        hit &= ~clash
    else:
        hit[:] = False
    change_h = np.where(hit, (length - (end - start)) / 3.6e12, 0.0)
    v["start_at"] = _as_time(np.where(hit, new_start, start)).to_numpy()
    v["end_at"] = _as_time(np.where(hit, new_end, end)).to_numpy()
    method = v["method"].astype("str").to_numpy().astype(object)
    method[hit] = "manual"
    v["method"] = pd.Series(method, index=v.index).astype("str")
    world.rebill(ids[hit], change_h[hit])
    return _hits(ids[hit], "quarter_hour_registration")


def _lengthen_under_grant(
    rng: np.random.Generator,
    world: _World,
    grants: pd.DataFrame,
    windows: pd.DataFrame,
    factor: float,
    pattern: str,
    hits: list[pd.DataFrame],
) -> pd.DataFrame:
    """Personal-care visits in each client's window grow longer, under a temporary extra grant."""
    v = world.visits
    if windows.empty:
        hits.append(_hits(np.array([], dtype=object), pattern))
        return grants
    ids = world.invoice
    start, end = _ns(v["start_at"]), _ns(v["end_at"])
    w = windows.groupby("client_id").agg(begin=("begin", "min"), end=("end", "max"))
    client = v["client_id"].astype("str")
    begin = _ns(client.map(w["begin"]).astype("datetime64[ns]").fillna(pd.Timestamp.max))
    stop = _ns(client.map(w["end"]).astype("datetime64[ns]").fillna(pd.Timestamp.min))
    day_start = start // _NS_PER_DAY * _NS_PER_DAY
    inside = (start >= begin) & (day_start < stop) & (stop > begin)
    hit = inside & (v["service_type"].astype("str") == "personal_care").to_numpy()
    hit &= world.regular_visit
    dur = end - start
    room = np.minimum(
        _free_after(*_times(v)) - 5 * _NS_PER_MIN, day_start + _NS_PER_DAY - _NS_PER_MIN - end
    )
    extra = np.clip(
        np.round(dur * (factor - 1.0) / _NS_PER_MIN) * _NS_PER_MIN, 0, np.maximum(room, 0)
    )
    extra = np.where(hit, extra, 0).astype(np.int64)
    hit &= extra >= 5 * _NS_PER_MIN
    extra = np.where(hit, extra, 0)
    v["end_at"] = _as_time(end + extra).to_numpy()
    hours = extra / 3.6e12
    world.rebill(ids[hit], hours[hit])
    # The temporary grant: enough hours per month, pro rata over its days, for each month's extra.
    if hit.any():
        extra_rows = pd.DataFrame(
            {
                "provider_id": v.loc[hit, "provider_id"].astype("str").to_numpy(),
                "client_id": client[hit].to_numpy(),
                "day": pd.to_datetime(day_start[hit]),
                "hours": hours[hit],
            }
        )
        per_pair = extra_rows.groupby(["provider_id", "client_id"])
        new_grants = []
        for (provider, cid), group in per_pair:
            first, last = group["day"].min(), group["day"].max()
            need = 0.0
            for month, part in group.groupby(group["day"].dt.to_period("M")):
                m_first = max(first, month.start_time)
                m_last = min(last, month.end_time.normalize())
                held = (m_last - m_first).days + 1
                need = max(need, part["hours"].sum() * month.days_in_month / held)
            new_grants.append((cid, provider, float(np.ceil(need + 1.0)), first, last))
        numbers = pd.to_numeric(grants["grant_id"].astype("str").str[1:], errors="coerce")
        next_grant = int(numbers.max()) + 1 if numbers.notna().any() else 1
        added = pd.DataFrame(
            {
                "grant_id": [f"G{next_grant + i:06d}" for i in range(len(new_grants))],
                "client_id": [g[0] for g in new_grants],
                "provider_id": [g[1] for g in new_grants],
                "service_type": "personal_care",
                "hours_per_month": [min(g[2], 744.0) for g in new_grants],
                "valid_from": pd.to_datetime([g[3] for g in new_grants]),
                "valid_to": pd.to_datetime([g[4] for g in new_grants]),
            }
        )
        added = added.astype(
            {c: "str" for c in ("grant_id", "client_id", "provider_id", "service_type")}
        )
        added = added.astype(
            {"valid_from": grants["valid_from"].dtype, "valid_to": grants["valid_to"].dtype}
        )
        grants = pd.concat([grants, added], ignore_index=True)
    del rng
    hits.append(_hits(ids[hit], pattern))
    return grants


def _holiday_cover(
    rng: np.random.Generator, world: _World, params: HonestOddParameters
) -> pd.DataFrame:
    """In the holidays, an evening carer's visits go to a morning carer of another provider."""
    v = world.visits
    start = v["start_at"]
    month_day = start.dt.month.to_numpy() * 100 + start.dt.day.to_numpy()
    holiday = np.zeros(len(v), dtype=bool)
    for (m0, d0), (m1, d1) in _HOLIDAYS:
        holiday |= (month_day >= m0 * 100 + d0) & (month_day <= m1 * 100 + d1)
    if not holiday.any():
        return _hits(np.array([], dtype=object), "holiday_cover_other_provider")
    ids = world.invoice
    spans = (
        pd.DataFrame(
            {
                "staff": v["staff_id"].astype("str").to_numpy(),
                "provider": v["provider_id"].astype("str").to_numpy(),
                "s": (start.dt.hour + start.dt.minute / 60).to_numpy(),
                "e": ((v["end_at"] - start.dt.normalize()).dt.total_seconds() / 3600).to_numpy(),
                "regular": world.regular_visit,
            }
        )[holiday]
        .groupby("staff")
        .agg(
            provider=("provider", "first"),
            n_prov=("provider", "nunique"),
            first=("s", "min"),
            last=("e", "max"),
            regular=("regular", "all"),
        )
    )
    everywhere = v.groupby(v["staff_id"].astype("str"))["provider_id"].nunique()
    spans = spans[(spans["n_prov"] == 1) & (everywhere.reindex(spans.index) == 1)]
    morning = spans[spans["last"] <= 13.0].sort_index()
    evening = spans[(spans["first"] >= 15.0) & (spans["last"] <= 23.5) & spans["regular"]]
    evening = evening.sort_index()
    n_pairs = round(params.holiday_cover_pairs_per_provider * v["provider_id"].nunique())
    if morning.empty or evening.empty or n_pairs == 0:
        return _hits(np.array([], dtype=object), "holiday_cover_other_provider")
    m_ids = rng.permutation(morning.index.to_numpy())
    e_ids = rng.permutation(evening.index.to_numpy())
    cover: dict[str, str] = {}
    used = 0
    for e_id in e_ids:
        if len(cover) >= n_pairs or used >= m_ids.size:
            break
        if morning.at[m_ids[used], "provider"] == evening.at[e_id, "provider"]:
            continue
        cover[str(e_id)] = str(m_ids[used])
        used += 1
    staff = v["staff_id"].astype("str").to_numpy().astype(object)
    hit = holiday & np.isin(staff, list(cover))
    staff[hit] = [cover[s] for s in staff[hit]]
    v["staff_id"] = pd.Series(staff, index=v.index).astype("str")
    return _hits(ids[hit], "holiday_cover_other_provider")
