"""Provider truth and applicants: which companies are irregular in which month.

Why: the provider scorecard (`tillit providers`) ranks companies, not invoices, and
needs answers to be judged against. A provider is irregular in a month when most of
its invoices that month are irregular, or when it is a phoenix (the successor of a
sanctioned, terminated company, run by the same people). Applicants (contract v1.2:
no approval date, no invoices) are added to the register, some of them run by
people who sat on the board of a sanctioned or terminated company: those are the
ones an approval officer should look into.

Kept apart from the rest of the simulator: one call at the end of `simulate`, with
its own random stream, so the invoices and their truth are the same with or without it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tillit.simulate.common import _org_number

PROVIDER_TRUTH_COLUMNS = (
    "provider_id",
    "period",
    "n_invoices",
    "n_irregular",
    "irregular_invoice_share",
    "phoenix",
    "applicant",
    "irregular",
    "reason",
)
# Applicants per provider in the register, and the share of them run by people
# from a sanctioned or terminated company.
_APPLICANT_SHARE = 0.08
_LINKED_APPLICANT_SHARE = 0.5


def add_provider_truth(
    seed: int,
    tables: dict[str, pd.DataFrame],
    truth: pd.DataFrame,
    phoenix_provider_ids: set[str],
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Add applicants to the register and say which providers are irregular in which month.

    Args:
        seed: the simulation's seed (a separate stream is drawn from it).
        tables: the simulated contract tables (not changed; new frames are returned).
        truth: the invoice truth (invoice_id, irregular, scheme, excess_sek).
        phoenix_provider_ids: the phoenix successors.

    Returns:
        The tables with applicants added to providers and provider_persons, and one
        row per provider and month it billed, plus one row per applicant in the last month.
    """
    rng = np.random.default_rng([seed, 14])
    tables = dict(tables)
    invoices = tables["invoices"][["invoice_id", "provider_id", "period"]].merge(
        truth[["invoice_id", "irregular"]], on="invoice_id", how="left"
    )
    month = (
        invoices.groupby(["provider_id", "period"], sort=True)["irregular"]
        .agg(n_invoices="size", n_irregular="sum")
        .reset_index()
    )
    month["n_irregular"] = month["n_irregular"].astype("int64")
    month["irregular_invoice_share"] = month["n_irregular"] / month["n_invoices"]
    month["phoenix"] = month["provider_id"].isin(phoenix_provider_ids)
    month["applicant"] = False
    majority = month["irregular_invoice_share"] > 0.5
    month["irregular"] = majority | month["phoenix"]
    month["reason"] = np.where(
        month["phoenix"], "phoenix", np.where(majority, "majority_irregular_invoices", "")
    )

    last_period = str(invoices["period"].max())
    providers, persons, applicants = _applicants(rng, tables, last_period)
    tables["providers"] = providers
    tables["provider_persons"] = persons
    frame = pd.concat([month, applicants], ignore_index=True)
    frame = frame.astype(
        {
            "provider_id": "str",
            "period": "str",
            "n_invoices": "int64",
            "n_irregular": "int64",
            "irregular_invoice_share": "float64",
            "phoenix": "bool",
            "applicant": "bool",
            "irregular": "bool",
            "reason": "str",
        }
    )
    return tables, frame.loc[:, list(PROVIDER_TRUTH_COLUMNS)].reset_index(drop=True)


def _applicants(
    rng: np.random.Generator, tables: dict[str, pd.DataFrame], last_period: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    providers = tables["providers"]
    persons = tables["provider_persons"]
    events = tables["provider_events"]
    last_day = pd.Timestamp(f"{last_period}-01") + pd.offsets.MonthEnd(0)
    sanctioned = set(events.loc[events["event_type"] == "sanction", "provider_id"])
    bad = providers.loc[
        providers["terminated_on"].notna() | providers["provider_id"].isin(sanctioned),
        "provider_id",
    ]
    # People who led a sanctioned or terminated company.
    leaders = persons[
        persons["provider_id"].isin(bad) & persons["role"].isin(["board_member", "owner", "ceo"])
    ]
    pool = sorted(set(leaders["person_id"]))
    n = max(2, round(_APPLICANT_SHARE * len(providers)))
    n_linked = min(len(pool), round(_LINKED_APPLICANT_SHARE * n)) if pool else 0
    linked_people = list(rng.choice(pool, n_linked, replace=False)) if n_linked else []
    taken = set(providers["org_number"])
    rows, person_rows, truth_rows = [], [], []
    for i in range(n):
        provider_id = f"A{i + 1:04d}"
        legal_form = "AB" if rng.random() < 0.8 else "EF"
        org = _org_number(rng, legal_form)
        while org in taken:
            org = _org_number(rng, legal_form)
        taken.add(org)
        registered = last_day - pd.Timedelta(days=int(rng.integers(30, 400)))
        rows.append((provider_id, org, legal_form, registered))
        linked = i < n_linked
        people = [str(linked_people[i])] if linked else []
        people += [f"RA{i + 1:04d}{j}" for j in range(1 if linked else int(rng.integers(1, 3)))]
        for j, person in enumerate(people):
            role = "ceo" if j == 0 else "board_member"
            person_rows.append((provider_id, person, role, registered))
        truth_rows.append(
            {
                "provider_id": provider_id,
                "period": last_period,
                "n_invoices": 0,
                "n_irregular": 0,
                "irregular_invoice_share": 0.0,
                "phoenix": False,
                "applicant": True,
                "irregular": linked,
                "reason": "applicant_linked_to_sanctioned_or_terminated" if linked else "",
            }
        )
    new_providers = pd.DataFrame(
        {
            "provider_id": pd.Series([r[0] for r in rows], dtype="str"),
            "org_number": pd.Series([r[1] for r in rows], dtype="str"),
            "legal_form": pd.Series([r[2] for r in rows], dtype="str"),
            "registered_on": pd.Series([r[3] for r in rows], dtype="datetime64[ns]"),
            "approved_on": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
            "terminated_on": pd.Series([pd.NaT] * n, dtype="datetime64[ns]"),
        }
    )
    new_persons = pd.DataFrame(
        {
            "provider_id": pd.Series([r[0] for r in person_rows], dtype="str"),
            "person_id": pd.Series([r[1] for r in person_rows], dtype="str"),
            "role": pd.Series([r[2] for r in person_rows], dtype="str"),
            "from_date": pd.Series([r[3] for r in person_rows], dtype="datetime64[ns]"),
            "to_date": pd.Series([pd.NaT] * len(person_rows), dtype="datetime64[ns]"),
        }
    )
    return (
        pd.concat([providers, new_providers], ignore_index=True),
        pd.concat([persons, new_persons], ignore_index=True),
        pd.DataFrame(truth_rows),
    )


__all__ = ["PROVIDER_TRUTH_COLUMNS", "add_provider_truth"]
