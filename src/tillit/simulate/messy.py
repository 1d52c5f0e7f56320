"""The `messy` profile: the honest noise real visit logs and payment exports carry.

Why: tillit's findings were built on a world where honest data never trips them. A real
export is messier in ways nobody lists in advance, so the simulator draws a *family* of
municipalities whose noise levels, sizes and rates differ by seed, and lays this noise over
the tidy world (whose truth stays where it was):

- staff checking in at the next client before checking out at the last (an app or manual
  registration whose end runs a few minutes to most of a visit into the next one);
- forgotten check-outs, the end typed in hours later;
- evening visits that run past midnight;
- visits typed in afterwards (manual, rounded to five minutes) instead of the key tag;
- corrected invoices (the export holds the corrected row, submitted later: the contract has
  one row per provider, client, service and month and no negative amounts, so a credit note
  appears as the invoice corrected down, to zero when fully credited);
- a tariff that changes mid-year while the tariffs table holds one rate per year;
- amounts rounded to whole kronor by some providers;
- staff working for two providers (a morning carer at one, an evening carer at another);
- providers of very different sizes (a wider size distribution, set before the world is drawn).

It also plants one scheme the rest of tillit was never built around, `padded_visits`: a few
providers lengthen every registered visit of most of their clients and bill the padded
hours, so billed matches registered and nothing is a finding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import TypeVar

import numpy as np
import pandas as pd

PADDED_VISITS = "padded_visits"
_NS_PER_MIN = 60 * 10**9
_MAX_VISIT_NS = (24 * 60 - 1) * _NS_PER_MIN


class DrawnLevels:
    """Levels drawn from a seed, as the flat record a run reports (`parameters`)."""

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}  # type: ignore[call-overload]


_Levels = TypeVar("_Levels", bound=DrawnLevels)


def override_levels(drawn: _Levels, levels: Mapping[str, float]) -> _Levels:
    """The drawn levels with those named in `levels` replaced (others ignored), types kept."""
    kinds = {f.name: f.type for f in fields(drawn)}  # type: ignore[arg-type]
    given = {
        k: (int(v) if kinds[k] in (int, "int") else float(v))
        for k, v in levels.items()
        if k in kinds
    }
    return replace(drawn, **given)  # type: ignore[type-var]


@dataclass(frozen=True)
class MessyParameters(DrawnLevels):
    """The noise levels of one messy municipality, drawn from its seed."""

    provider_size_sigma: float
    overlap_share: float  # of app/manual visits followed by the same carer's next visit
    overlap_max_visit_share: float  # the longest overlap, as a share of the next visit
    forgotten_checkout_share: float  # of app/manual visits
    after_midnight_share: float  # of evening visits starting at 20:00 or later
    typed_afterwards_share: float  # of key-tag visits registered by hand instead
    corrected_invoice_share: float  # of honest invoices
    credited_invoice_share: float  # of honest invoices, corrected to zero
    tariff_change_month: int  # month of the year (1-12) from which the new rate applies
    tariff_change_share: float  # the rate rises by this share
    whole_krona_provider_share: float
    shared_staff_pairs_per_provider: float
    padded_provider_share: float
    padding_factor: float


def draw_parameters(seed: int) -> MessyParameters:
    """Noise levels for a messy municipality: a different draw for every seed."""
    rng = np.random.default_rng([seed, 20269])
    return MessyParameters(
        provider_size_sigma=float(rng.uniform(1.4, 2.0)),
        overlap_share=float(rng.uniform(0.08, 0.30)),
        overlap_max_visit_share=float(rng.uniform(0.5, 0.95)),
        forgotten_checkout_share=float(rng.uniform(0.002, 0.012)),
        after_midnight_share=float(rng.uniform(0.1, 0.5)),
        typed_afterwards_share=float(rng.uniform(0.02, 0.10)),
        corrected_invoice_share=float(rng.uniform(0.01, 0.05)),
        credited_invoice_share=float(rng.uniform(0.002, 0.01)),
        tariff_change_month=int(rng.integers(3, 10)),
        tariff_change_share=float(rng.uniform(0.01, 0.035)),
        whole_krona_provider_share=float(rng.uniform(0.1, 0.35)),
        shared_staff_pairs_per_provider=float(rng.uniform(0.2, 0.6)),
        padded_provider_share=float(rng.uniform(0.02, 0.04)),
        padding_factor=float(rng.uniform(1.25, 1.5)),
    )


def apply_messy(
    tables: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    params: MessyParameters,
    seed: int,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Lay the messy profile's honest noise (and the padded-visits scheme) over a tidy world."""
    rng = np.random.default_rng([seed, 20270])
    tables = dict(tables)
    visits = tables["visits"].copy()
    invoices = tables["invoices"].copy()
    truth = truth.copy()
    inv_truth = invoices[["invoice_id"]].merge(truth, on="invoice_id", how="left")
    regular = ~inv_truth["irregular"].to_numpy(bool)

    _pad_visits(rng, visits, invoices, truth, regular, params)
    _bill_hospital_days(rng, tables, invoices, truth)
    regular = ~invoices[["invoice_id"]].merge(truth, on="invoice_id")["irregular"].to_numpy(bool)
    _registration_noise(rng, visits, params)
    _share_staff(rng, visits, params)
    _correct_invoices(rng, invoices, regular, params)
    _mid_year_tariff(invoices, truth, tables["tariffs"], params)
    _whole_kronor(rng, invoices, regular, params)

    tables["visits"] = visits
    tables["invoices"] = invoices
    return tables, truth


def _pad_visits(
    rng: np.random.Generator,
    visits: pd.DataFrame,
    invoices: pd.DataFrame,
    truth: pd.DataFrame,
    regular: np.ndarray,
    params: MessyParameters,
) -> None:
    """A few honest-looking providers pad every visit of most clients in the later months."""
    periods = np.sort(invoices["period"].unique())
    late = periods[len(periods) // 2 :]
    per_provider = pd.DataFrame(
        {
            "provider_id": invoices["provider_id"],
            "regular": regular,
            "late": invoices["period"].isin(late),
        }
    ).groupby("provider_id")
    all_regular = per_provider["regular"].all()
    late_count = per_provider["late"].sum()
    candidates = np.sort(all_regular.index[all_regular & (late_count >= 20)].to_numpy())
    n_pad = max(1, round(params.padded_provider_share * invoices["provider_id"].nunique()))
    if candidates.size == 0 or len(late) == 0:
        return
    padded = set(rng.choice(candidates, size=min(n_pad, candidates.size), replace=False))
    target = (
        invoices["provider_id"].isin(padded)
        & invoices["period"].isin(late)
        & (invoices["billed_hours"] > 0)
    ).to_numpy()
    target = target & (rng.random(len(invoices)) < 0.75)
    keys = invoices.loc[target, ["provider_id", "client_id", "service_type", "period"]]
    v_start = visits["start_at"]
    v_key = visits[["provider_id", "client_id", "service_type"]].assign(
        period=(v_start.dt.year * 100 + v_start.dt.month).to_numpy()
    )
    keys = keys.assign(period=_period_number(keys["period"]))
    hit = v_key.merge(keys.assign(_hit=True), how="left", on=list(keys.columns))["_hit"]
    hit = hit.fillna(False).to_numpy(bool)
    start = visits["start_at"].to_numpy("datetime64[ns]").astype(np.int64)
    end = visits["end_at"].to_numpy("datetime64[ns]").astype(np.int64)
    dur = end - start
    new_dur = np.minimum(
        np.round(dur * params.padding_factor / _NS_PER_MIN) * _NS_PER_MIN, _MAX_VISIT_NS
    )
    added_h = np.where(hit, (new_dur - dur) / 3.6e12, 0.0)
    end = np.where(hit, start + new_dur.astype(np.int64), end)
    visits["end_at"] = pd.Series(end.astype("datetime64[ns]"), index=visits.index)
    # A key-tag check-out cannot be moved: padded visits are registered in the app.
    method = visits["method"].astype("str").to_numpy().astype(object)
    method[hit & (method == "nfc")] = "app"
    visits["method"] = pd.Series(method, index=visits.index).astype("str")
    added = (
        pd.DataFrame({**{c: v_key[c] for c in keys.columns}, "h": added_h})[hit]
        .groupby(list(keys.columns))["h"]
        .sum()
    )
    inv_key = invoices[list(keys.columns)].assign(period=_period_number(invoices["period"]))
    extra = (
        inv_key.merge(added.reset_index(), how="left", on=list(keys.columns))["h"]
        .fillna(0.0)
        .to_numpy()
    )
    extra = np.where(target, extra, 0.0)
    billed = invoices["billed_hours"].to_numpy()
    rate = np.where(billed > 0, invoices["amount_sek"].to_numpy() / np.maximum(billed, 1e-9), 0.0)
    new_billed = np.minimum(np.round(billed + extra, 2), 744.0)
    gained = np.round((new_billed - billed) * rate, 2)
    invoices["billed_hours"] = new_billed
    invoices["amount_sek"] = np.round(invoices["amount_sek"].to_numpy() + gained, 2)
    planted = invoices.loc[gained > 0.5, "invoice_id"]
    pos = truth["invoice_id"].isin(planted)
    gain_of = pd.Series(gained, index=invoices["invoice_id"].to_numpy())
    truth.loc[pos, "irregular"] = True
    truth.loc[pos, "scheme"] = PADDED_VISITS
    truth.loc[pos, "excess_sek"] = gain_of.reindex(truth.loc[pos, "invoice_id"]).to_numpy()


def _bill_hospital_days(
    rng: np.random.Generator,
    tables: dict[str, pd.DataFrame],
    invoices: pd.DataFrame,
    truth: pd.DataFrame,
) -> None:
    """Irregular providers bill the whole grant for months the client spent partly in hospital.

    No visit is registered during the stay: only billed hours against the days at home show it.
    """
    stays = tables["hospital_stays"]
    if stays.empty:
        return
    inv_truth = invoices[["invoice_id"]].merge(truth, on="invoice_id", how="left")
    bad_providers = set(invoices.loc[inv_truth["irregular"].to_numpy(bool), "provider_id"])
    first = pd.to_datetime(invoices["period"] + "-01")
    days = first.dt.days_in_month.to_numpy()
    last = first + pd.to_timedelta(days - 1, unit="D")
    merged = (
        invoices[["invoice_id", "client_id"]]
        .assign(first=first, last=last)
        .merge(stays, on="client_id")
    )
    admitted = pd.to_datetime(merged["admitted_on"]) + pd.Timedelta(days=1)
    discharged = pd.to_datetime(merged["discharged_on"]).fillna(
        merged["last"] + pd.Timedelta(days=1)
    )
    begin = np.maximum(admitted, merged["first"])
    end = np.minimum(discharged, merged["last"] + pd.Timedelta(days=1))
    merged["full_days"] = np.maximum((end - begin).dt.days, 0)
    in_hospital = merged.groupby("invoice_id")["full_days"].sum()
    h_days = in_hospital.reindex(invoices["invoice_id"]).fillna(0).to_numpy()
    grants = tables["grants"]
    g = (
        invoices[["invoice_id", "provider_id", "client_id", "service_type"]]
        .assign(first=first)
        .merge(grants, on=["provider_id", "client_id", "service_type"])
    )
    valid = (pd.to_datetime(g["valid_from"]) <= g["first"]) & (
        pd.to_datetime(g["valid_to"]).isna() | (pd.to_datetime(g["valid_to"]) >= g["first"])
    )
    granted = g[valid].groupby("invoice_id")["hours_per_month"].max()
    granted_h = granted.reindex(invoices["invoice_id"]).fillna(0).to_numpy()
    regular = ~inv_truth["irregular"].to_numpy(bool)
    billed = invoices["billed_hours"].to_numpy()
    eligible = (
        regular
        & invoices["provider_id"].isin(bad_providers).to_numpy()
        & (h_days >= 7)
        & (h_days < days)
        & (granted_h > billed)
        & (billed > 0)
    )
    chosen = eligible & (rng.random(len(invoices)) < 0.5)
    rate = invoices["amount_sek"].to_numpy() / np.maximum(billed, 1e-9)
    new_billed = np.where(chosen, np.round(granted_h, 2), billed)
    gained = np.round((new_billed - billed) * rate, 2)
    invoices["billed_hours"] = new_billed
    invoices["amount_sek"] = np.round(invoices["amount_sek"].to_numpy() + gained, 2)
    planted = pd.Series(gained, index=invoices["invoice_id"].to_numpy())
    planted = planted[chosen & (gained > 0.5)]
    pos = truth["invoice_id"].isin(planted.index)
    truth.loc[pos, "irregular"] = True
    truth.loc[pos, "scheme"] = "hospital_billing"
    truth.loc[pos, "excess_sek"] = planted.reindex(truth.loc[pos, "invoice_id"]).to_numpy()


def _registration_noise(
    rng: np.random.Generator, visits: pd.DataFrame, params: MessyParameters
) -> None:
    """Late check-outs into the next visit, forgotten check-outs, midnight, typed-in visits."""
    n = len(visits)
    start = visits["start_at"].to_numpy("datetime64[ns]").astype(np.int64)
    end = visits["end_at"].to_numpy("datetime64[ns]").astype(np.int64)
    method = visits["method"].astype("str").to_numpy().astype(object)
    staff = visits["staff_id"].astype("str").to_numpy()
    client = visits["client_id"].astype("str").to_numpy()
    order = np.lexsort((start, staff))
    s_staff, s_start, s_end = staff[order], start[order], end[order]
    has_next = np.r_[s_staff[1:] == s_staff[:-1], False]
    nxt = np.minimum(np.arange(n) + 1, n - 1)
    gap_ok = has_next & (s_start[nxt] - s_end < 3 * 3600 * 10**9) & (s_start[nxt] >= s_end)
    gap_ok = gap_ok & (client[order][nxt] != client[order])
    typed = np.isin(method[order], ["app", "manual"])
    u = rng.random(n)
    late = gap_ok & typed & (u < params.overlap_share)
    next_dur = s_end[nxt] - s_start[nxt]
    overlap = (
        2 * _NS_PER_MIN
        + rng.random(n) * np.maximum(params.overlap_max_visit_share * next_dur - 2 * _NS_PER_MIN, 0)
    ).astype(np.int64)
    new_end = np.where(late, s_start[nxt] + overlap, s_end)
    forgot = (
        typed
        & (u >= params.overlap_share)
        & (u < params.overlap_share + params.forgotten_checkout_share)
    )
    filled = s_start + (rng.uniform(2.0, 8.0, n) * 3600 * 10**9).astype(np.int64)
    new_end = np.where(forgot, np.maximum(filled, s_end), new_end)
    new_end = np.minimum(new_end, s_start + _MAX_VISIT_NS)
    end[order] = new_end

    # Evening visits running past midnight: a carer's last visit of the evening is
    # delayed until it ends after midnight (never into the carer's own earlier visits).
    minute_of_day = (start // _NS_PER_MIN) % (24 * 60)
    day = start // (24 * 60 * _NS_PER_MIN)
    order = np.lexsort((start, staff))
    last_of_day = np.ones(n, dtype=bool)
    same = (staff[order][1:] == staff[order][:-1]) & (day[order][1:] == day[order][:-1])
    last_of_day[order[:-1][same]] = False
    evening = (minute_of_day >= 20 * 60) & (minute_of_day < 23 * 60) & last_of_day
    shift = evening & (rng.random(n) < params.after_midnight_share)
    dur = end - start
    midnight = (day + 1) * 24 * 60 * _NS_PER_MIN
    past = rng.integers(5, 61, n) * _NS_PER_MIN
    new_start = np.maximum(start, midnight - dur + past)
    new_start = np.minimum(new_start, midnight - _NS_PER_MIN)  # it still starts on its day
    start = np.where(shift, new_start, start)
    end = np.where(shift, start + dur, end)

    # Visits typed in afterwards: manual, to five minutes.
    typed_in = (method == "nfc") & (rng.random(n) < params.typed_afterwards_share)
    five = 5 * _NS_PER_MIN
    s5 = np.round(start / five).astype(np.int64) * five
    e5 = np.maximum(np.round(end / five).astype(np.int64) * five, s5 + five)
    start = np.where(typed_in, s5, start)
    end = np.where(typed_in, e5, end)
    method[typed_in] = "manual"
    visits["start_at"] = pd.Series(start.astype("datetime64[ns]"), index=visits.index)
    visits["end_at"] = pd.Series(end.astype("datetime64[ns]"), index=visits.index)
    visits["method"] = pd.Series(method, index=visits.index).astype("str")


def _share_staff(rng: np.random.Generator, visits: pd.DataFrame, params: MessyParameters) -> None:
    """Morning carers of one provider who also work evenings at another, never at once."""
    start = visits["start_at"]
    hour_start = start.dt.hour + start.dt.minute / 60
    end_day = (visits["end_at"] - start.dt.normalize()).dt.total_seconds() / 3600
    spans = (
        pd.DataFrame(
            {
                "staff": visits["staff_id"],
                "provider": visits["provider_id"],
                "s": hour_start,
                "e": end_day,
            }
        )
        .groupby("staff")
        .agg(
            provider=("provider", "first"),
            n_prov=("provider", "nunique"),
            first=("s", "min"),
            last=("e", "max"),
        )
    )
    spans = spans[spans["n_prov"] == 1]
    morning = spans[spans["last"] <= 13.0].sort_index()
    evening = spans[(spans["first"] >= 15.0) & (spans["last"] <= 23.5)].sort_index()
    n_pairs = round(params.shared_staff_pairs_per_provider * visits["provider_id"].nunique())
    if morning.empty or evening.empty or n_pairs == 0:
        return
    m_ids = rng.permutation(morning.index.to_numpy())
    e_ids = rng.permutation(evening.index.to_numpy())
    renames: dict[str, str] = {}
    used_m = 0
    for e_id in e_ids:
        if len(renames) >= n_pairs or used_m >= m_ids.size:
            break
        m_id = m_ids[used_m]
        if morning.at[m_id, "provider"] == evening.at[e_id, "provider"]:
            continue
        renames[str(e_id)] = str(m_id)
        used_m += 1
    visits["staff_id"] = visits["staff_id"].astype("str").replace(renames).astype("str")


def _correct_invoices(
    rng: np.random.Generator, invoices: pd.DataFrame, regular: np.ndarray, params: MessyParameters
) -> None:
    """Corrected invoices replace the original row: hours and amount changed, sent later."""
    n = len(invoices)
    billed = invoices["billed_hours"].to_numpy()
    amount = invoices["amount_sek"].to_numpy()
    u = rng.random(n)
    credited = regular & (billed > 0) & (u < params.credited_invoice_share)
    corrected = (
        regular
        & (billed > 1)
        & (u >= params.credited_invoice_share)
        & (u < params.credited_invoice_share + params.corrected_invoice_share)
    )
    factor = np.where(corrected, rng.uniform(0.85, 1.0, n), 1.0)
    factor = np.where(credited, 0.0, factor)
    new_billed = np.round(billed * factor, 2)
    rate = amount / np.maximum(billed, 1e-9)
    invoices["billed_hours"] = new_billed
    invoices["amount_sek"] = np.where(corrected | credited, np.round(new_billed * rate, 2), amount)
    later = pd.to_timedelta(np.where(corrected | credited, rng.integers(15, 60, n), 0), unit="D")
    invoices["submitted_on"] = (pd.to_datetime(invoices["submitted_on"]) + later).dt.date


def _mid_year_tariff(
    invoices: pd.DataFrame, truth: pd.DataFrame, tariffs: pd.DataFrame, params: MessyParameters
) -> None:
    """From a month of each year every provider bills a new rate; the tariffs table keeps one."""
    month = invoices["period"].str[5:7].astype(int).to_numpy()
    after = month >= params.tariff_change_month
    scale = np.where(after, 1.0 + params.tariff_change_share, 1.0)
    invoices["amount_sek"] = np.round(invoices["amount_sek"].to_numpy() * scale, 2)
    factor = pd.Series(scale, index=invoices["invoice_id"].to_numpy())
    truth["excess_sek"] = np.round(
        truth["excess_sek"].to_numpy() * factor.reindex(truth["invoice_id"]).to_numpy(), 2
    )
    del tariffs  # the table is left as exported: one rate per service and year


def _whole_kronor(
    rng: np.random.Generator, invoices: pd.DataFrame, regular: np.ndarray, params: MessyParameters
) -> None:
    """Some providers' payment systems round every amount to whole kronor."""
    providers = np.sort(invoices["provider_id"].unique())
    rounding = providers[rng.random(providers.size) < params.whole_krona_provider_share]
    hit = invoices["provider_id"].isin(rounding).to_numpy()
    invoices["amount_sek"] = np.where(
        hit, np.round(invoices["amount_sek"].to_numpy()), invoices["amount_sek"].to_numpy()
    )
    del regular


def _period_number(period: pd.Series) -> np.ndarray:
    """`YYYY-MM` as the number YYYYMM."""
    text = period.astype("str")
    return (text.str[:4].astype(int) * 100 + text.str[5:7].astype(int)).to_numpy()
