"""The provider register profile at a date: what the register said about each company then.

One row per provider in the register at the end of a month (registered by then and
not terminated before the month began; applicants included) or billing that month, with the register
facts the invoice features already use (events in the window, F-skatt revoked,
board links, client growth, takeovers: computed by the same SQL,
`queries.provider_month_features`) and the evidence behind them: the events with
their dates and amounts, and for every board link the pseudonymised person, the
linked company's org number and what happened to it when.

Contract v1.3: with a `Linkage` (`tillit.data.linkage`, from `provider_contacts` and
person name tokens), each profile also says how surely the provider shares an
address, a bank account, a phone, an e-mail domain or a person (under another id)
with a sanctioned or terminated company, and keeps the evidence pair: which facts,
which company, with what match probability (`RegisterProfile.shared_facts`).

Point in time: an event, a role, a termination or a sanction dated after the last
day of the month never counts, so a profile of 2025-06 reads the same whether it
is built in July 2025 or years later. An approval dated after the month makes the
provider an applicant in that month.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tillit.config import FeatureConfig
from tillit.features import queries
from tillit.features.build import requested_months
from tillit.features.catalog import PROVIDER_EVENT_COUNTS
from tillit.features.engine import DuckDBEngine, Engine

if TYPE_CHECKING:
    from tillit.data.linkage import Linkage

# The profile's column for the linkage evidence (contract v1.3): the strongest match
# probability with a sanctioned or terminated company, 0 without one (or without contacts).
SHARED_FACTS_COLUMN = "provider_shares_facts_with_sanctioned_or_terminated"
SHARED_FACT_COLUMNS = (
    "provider_id",
    "period",
    "linked_provider_id",
    "linked_org_number",
    "shared_facts",
    "match_probability",
    "linked_sanctioned_on",
    "linked_terminated_on",
)

# Tables the register profile needs; the rest are given empty so loading stays cheap.
_NEEDED = ("providers", "provider_events", "provider_persons", "invoices")
_EVENT_TYPES_SHOWN = (
    "tax_debt_registered",
    "tax_debt_cleared",
    "f_tax_revoked",
    "f_tax_restored",
    "employer_registration_revoked",
    "sanction",
    "contract_warning",
    "inspection_remark",
    "complaint",
    "board_change",
    "owner_change",
)


def register_columns(config: FeatureConfig) -> tuple[str, ...]:
    """The numeric register measures of a profile, named as in the invoice feature table."""
    days = config.provider_event_window_days
    return (
        f"provider_tax_debt_registered_sek_{days}d",
        f"provider_f_tax_revoked_{days}d",
        "provider_f_tax_currently_revoked",
        f"provider_employer_registration_revoked_{days}d",
        f"provider_sanctions_{days}d",
        f"provider_complaints_{days}d",
        f"provider_inspection_remarks_{days}d",
        f"provider_contract_warnings_{days}d",
        f"provider_board_changes_{days}d",
        f"provider_owner_changes_{days}d",
        f"provider_address_changes_{days}d",
        "provider_persons_linked_to_sanctioned_or_terminated",
        f"provider_client_growth_{config.client_growth_window_months}m",
        f"provider_clients_from_terminated_providers_share_{config.takeover_lookback_months}m",
        "provider_age_years",
        "provider_approval_age_years",
    )


@dataclass(frozen=True)
class RegisterProfile:
    """The register at the end of each requested month.

    Attributes:
        profile: one row per provider and period: provider_id, period, org_number,
            legal_form, registered_on, approved_on (NaT for an applicant then),
            is_applicant, n_clients, n_taken_over, then `register_columns`.
        links: one row per board link: provider_id, period, person_id, role,
            linked_provider_id, linked_org_number, linked_role, linked_from, linked_to,
            linked_sanctioned_on (latest sanction by then), linked_terminated_on.
        events: one row per register event in the window: provider_id, period,
            event_date, event_type, amount_sek (newest first).
        shared_facts: one row per evidence pair (contract v1.3): provider_id, period,
            linked_provider_id, linked_org_number, shared_facts (fact names, or
            "person" for a person linked under another id), match_probability,
            linked_sanctioned_on, linked_terminated_on (strongest first).
    """

    profile: pd.DataFrame
    links: pd.DataFrame
    events: pd.DataFrame
    shared_facts: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(SHARED_FACT_COLUMNS))
    )


def register_profile(
    tables: Mapping[str, pd.DataFrame],
    periods: str | Sequence[str],
    config: FeatureConfig | None = None,
    linkage: Linkage | None = None,
    min_probability: float = 0.05,
    engine: Engine | None = None,
) -> RegisterProfile:
    """The register profile of every provider in the register at the end of each period.

    Args:
        tables: validated contract tables; only providers, provider_events,
            provider_persons and invoices are read.
        periods: one `YYYY-MM` or several.
        config: windows; the defaults when None.
        linkage: providers and persons linked across registers (contract v1.3); None
            leaves the shared-facts evidence at 0.
        min_probability: a linked pair below this match probability is no evidence.
        engine: where the SQL runs; a fresh one-thread DuckDB when None (then closed here).
    """
    config = config or FeatureConfig()
    targets = requested_months(periods)
    plan = queries.plan_months(targets, config)
    light = {
        name: (tables[name] if name in _NEEDED else pd.DataFrame()) for name in queries._TABLE_TYPES
    }
    con = engine if engine is not None else DuckDBEngine()
    try:
        queries.load_tables(con, light, plan)
        con.register("providers_org", tables["providers"][["provider_id", "org_number"]])
        con.execute(
            """
            CREATE TEMP TABLE pm AS
            SELECT p.provider_id, mo.m, mo.month_start, mo.last_day
            FROM providers p JOIN months mo ON mo.is_target
            WHERE (p.registered_on <= mo.last_day
                   AND (p.terminated_on IS NULL OR p.terminated_on >= mo.month_start))
               OR EXISTS (SELECT 1 FROM inv WHERE inv.provider_id = p.provider_id AND inv.m = mo.m)
            """
        )
        queries.provider_month_features(con, config)
        raw = con.execute(
            """
            SELECT pm.provider_id, pm.m, pm.month_start, pm.last_day,
                   p.legal_form, p.registered_on,
                   CASE WHEN p.approved_on <= pm.last_day THEN p.approved_on END AS approved_on,
                   pe.* EXCLUDE (provider_id, m),
                   coalesce(pb.linked_persons, 0) AS linked_persons,
                   pc.n_clients, pc.n_clients_before, pc.growth_known, pc.n_taken_over
            FROM pm
            JOIN providers p USING (provider_id)
            LEFT JOIN pevents pe USING (provider_id, m)
            LEFT JOIN pboard pb USING (provider_id, m)
            LEFT JOIN pclients pc USING (provider_id, m)
            ORDER BY pm.m, pm.provider_id
            """
        ).df()
        links = _links(con)
        events = _events(con, config)
    finally:
        if engine is None:
            con.close()
    profile = _profile_frame(raw, tables["providers"], config)
    shared = _shared_facts(tables, profile, linkage, min_probability)
    strongest = shared.groupby(["provider_id", "period"])["match_probability"].max()
    keys = pd.MultiIndex.from_frame(profile[["provider_id", "period"]])
    profile[SHARED_FACTS_COLUMN] = strongest.reindex(keys).fillna(0.0).to_numpy(dtype="float64")
    return RegisterProfile(profile=profile, links=links, events=events, shared_facts=shared)


def _shared_facts(
    tables: Mapping[str, pd.DataFrame],
    profile: pd.DataFrame,
    linkage: Linkage | None,
    min_probability: float,
) -> pd.DataFrame:
    """Evidence pairs: a provider linked to a company sanctioned or terminated by the month's end.

    A contact link counts from the month both sides' facts were on record; a person
    link when the provider's person (current at the month's end) is linked under
    another id to a person who held a role at the other company by then. Links by
    one and the same person id are the board-link feature's, not repeated here.
    """
    empty = pd.DataFrame(columns=list(SHARED_FACT_COLUMNS))
    if linkage is None or profile.empty:
        return empty
    providers = tables["providers"].set_index("provider_id")
    events = tables["provider_events"]
    sanctions = events.loc[events["event_type"] == "sanction", ["provider_id", "event_date"]]
    months = profile[["provider_id", "period"]].copy()
    months["last_day"] = pd.to_datetime(months["period"] + "-01") + pd.offsets.MonthEnd(0)
    parts = []
    contact = linkage.provider_links
    contact = contact[contact["match_probability"] >= min_probability]
    if not contact.empty:
        pairs = months.merge(contact, on="provider_id")
        known = (pairs["valid_from"] <= pairs["last_day"]) & (
            pairs["linked_valid_from"] <= pairs["last_day"]
        )
        parts.append(pairs[known].drop(columns=["valid_from", "linked_valid_from"]))
    people = linkage.person_links
    people = people[
        (people["match_probability"] >= min_probability)
        & (people["person_id"] != people["linked_person_id"])
    ]
    if not people.empty:
        roles = tables["provider_persons"]
        here = roles[["provider_id", "person_id", "from_date", "to_date"]]
        there = roles[["provider_id", "person_id", "from_date"]].rename(
            columns={
                "provider_id": "linked_provider_id",
                "person_id": "linked_person_id",
                "from_date": "linked_from",
            }
        )
        pairs = months.merge(here, on="provider_id").merge(people, on="person_id")
        current = (pairs["from_date"] <= pairs["last_day"]) & (
            pairs["to_date"].isna() | (pairs["to_date"] >= pairs["last_day"])
        )
        pairs = pairs[current].merge(there, on="linked_person_id")
        pairs = pairs[
            (pairs["linked_from"] <= pairs["last_day"])
            & (pairs["linked_provider_id"] != pairs["provider_id"])
        ]
        pairs = pairs.assign(shared_facts="person")
        parts.append(
            pairs[
                [
                    "provider_id",
                    "period",
                    "last_day",
                    "linked_provider_id",
                    "match_probability",
                    "shared_facts",
                ]
            ]
        )
    if not parts:
        return empty
    pairs = pd.concat(parts, ignore_index=True)
    terminated = pairs["linked_provider_id"].map(providers["terminated_on"])
    pairs["linked_terminated_on"] = terminated.where(terminated <= pairs["last_day"])
    merged = (
        pairs[["linked_provider_id", "last_day"]]
        .reset_index()
        .merge(
            sanctions.rename(columns={"provider_id": "linked_provider_id"}), on="linked_provider_id"
        )
    )
    merged = merged[merged["event_date"] <= merged["last_day"]]
    latest = merged.groupby("index")["event_date"].max()
    pairs["linked_sanctioned_on"] = latest.reindex(pairs.index)
    pairs = pairs[pairs["linked_terminated_on"].notna() | pairs["linked_sanctioned_on"].notna()]
    pairs["linked_org_number"] = (
        pairs["linked_provider_id"].map(providers["org_number"]).astype("str")
    )
    pairs = pairs.sort_values(
        ["period", "provider_id", "match_probability", "linked_provider_id", "shared_facts"],
        ascending=[True, True, False, True, True],
        kind="stable",
    ).drop_duplicates(["provider_id", "period", "linked_provider_id", "shared_facts"])
    return pairs.loc[:, list(SHARED_FACT_COLUMNS)].reset_index(drop=True)


def _links(con: Engine) -> pd.DataFrame:
    """Each current board person's roles at other providers that were sanctioned or terminated.

    The same definition as the `provider_persons_linked_to_sanctioned_or_terminated`
    feature (`queries.provider_month_features`), with the evidence kept.
    """
    frame = con.execute(
        """
        WITH current_persons AS (
            SELECT pm.provider_id, pm.m, pm.last_day, pp.person_id, pp.role
            FROM pm JOIN provider_persons pp
              ON pp.provider_id = pm.provider_id AND pp.from_date <= pm.last_day
             AND (pp.to_date IS NULL OR pp.to_date >= pm.last_day)
        ),
        other_roles AS (
            SELECT c.provider_id, c.m, c.last_day, c.person_id,
                   string_agg(DISTINCT c.role, ', ' ORDER BY c.role) AS role,
                   o.provider_id AS linked_provider_id,
                   string_agg(DISTINCT o.role, ', ' ORDER BY o.role) AS linked_role,
                   min(o.from_date) AS linked_from,
                   CASE WHEN bool_or(o.to_date IS NULL OR o.to_date > c.last_day) THEN NULL
                        ELSE max(o.to_date) END AS linked_to
            FROM current_persons c
            JOIN provider_persons o
              ON o.person_id = c.person_id AND o.provider_id <> c.provider_id
             AND o.from_date <= c.last_day
            GROUP BY c.provider_id, c.m, c.last_day, c.person_id, o.provider_id
        ),
        fates AS (
            SELECT r.*, CAST(po.org_number AS VARCHAR) AS linked_org_number,
                   CASE WHEN lp.terminated_on <= r.last_day THEN lp.terminated_on END
                       AS linked_terminated_on,
                   (SELECT max(e.event_date) FROM provider_events e
                    WHERE e.provider_id = r.linked_provider_id AND e.event_type = 'sanction'
                      AND e.event_date <= r.last_day) AS linked_sanctioned_on
            FROM other_roles r
            JOIN providers lp ON lp.provider_id = r.linked_provider_id
            JOIN providers_org po ON po.provider_id = r.linked_provider_id
        )
        SELECT provider_id, m, person_id, role, linked_provider_id, linked_org_number,
               linked_role, linked_from, linked_to, linked_sanctioned_on, linked_terminated_on
        FROM fates
        WHERE linked_sanctioned_on IS NOT NULL OR linked_terminated_on IS NOT NULL
        ORDER BY m, provider_id, person_id, linked_provider_id
        """
    ).df()
    frame.insert(1, "period", [queries.period_of(int(m)) for m in frame["m"]])
    return frame.drop(columns="m")


def _events(con: Engine, config: FeatureConfig) -> pd.DataFrame:
    """Register events of each provider in the window ending on the month's last day."""
    days = config.provider_event_window_days
    shown = ", ".join(f"'{e}'" for e in _EVENT_TYPES_SHOWN)
    frame = con.execute(
        f"""
        SELECT pm.provider_id, pm.m, e.event_date, e.event_type, e.amount_sek
        FROM pm JOIN provider_events e
          ON e.provider_id = pm.provider_id AND e.event_date <= pm.last_day
         AND e.event_date > pm.last_day - INTERVAL {days} DAY
        WHERE e.event_type IN ({shown})
        ORDER BY pm.m, pm.provider_id, e.event_date DESC, e.event_type
        """
    ).df()
    frame.insert(1, "period", [queries.period_of(int(m)) for m in frame["m"]])
    return frame.drop(columns="m")


def _profile_frame(
    raw: pd.DataFrame, providers: pd.DataFrame, config: FeatureConfig
) -> pd.DataFrame:
    days = config.provider_event_window_days

    def col(name: str) -> np.ndarray:
        return raw[name].astype("float64").fillna(0.0).to_numpy()

    def years(later: pd.Series, earlier: pd.Series) -> np.ndarray:
        span = ((later - earlier) / pd.Timedelta(days=1)).astype("float64").to_numpy() / 365.25
        return np.nan_to_num(np.clip(span, 0.0, None), nan=0.0)

    n_clients = col("n_clients")
    org = providers.set_index("provider_id")["org_number"].astype("str")
    out = pd.DataFrame(
        {
            "provider_id": raw["provider_id"].astype("str"),
            "period": [queries.period_of(int(m)) for m in raw["m"]],
            "org_number": raw["provider_id"].map(org).astype("str"),
            "legal_form": raw["legal_form"].astype("str"),
            "registered_on": raw["registered_on"],
            "approved_on": raw["approved_on"],
            "is_applicant": raw["approved_on"].isna().to_numpy(),
            "n_clients": n_clients,
            "n_taken_over": col("n_taken_over"),
        }
    )
    out[f"provider_tax_debt_registered_sek_{days}d"] = col("tax_debt_sek")
    out[f"provider_f_tax_revoked_{days}d"] = col("f_tax_revoked")
    out["provider_f_tax_currently_revoked"] = (
        raw["f_tax_revoked_now"].astype("boolean").fillna(False).astype(float).to_numpy()
    )
    for name in PROVIDER_EVENT_COUNTS:
        out[f"provider_{name}_{days}d"] = col(name)
    out["provider_persons_linked_to_sanctioned_or_terminated"] = col("linked_persons")
    growth_known = raw["growth_known"].astype("boolean").fillna(False).to_numpy(bool)
    out[f"provider_client_growth_{config.client_growth_window_months}m"] = np.where(
        growth_known & (n_clients > 0), n_clients / np.maximum(col("n_clients_before"), 1.0), 1.0
    )
    out[f"provider_clients_from_terminated_providers_share_{config.takeover_lookback_months}m"] = (
        col("n_taken_over") / np.maximum(n_clients, 1.0)
    )
    out["provider_age_years"] = years(raw["last_day"], raw["registered_on"])
    out["provider_approval_age_years"] = years(raw["last_day"], raw["approved_on"])
    return out.reset_index(drop=True)


__all__ = [
    "SHARED_FACTS_COLUMN",
    "SHARED_FACT_COLUMNS",
    "RegisterProfile",
    "register_columns",
    "register_profile",
]
