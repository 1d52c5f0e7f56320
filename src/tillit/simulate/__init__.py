"""A simulated municipality: every contract table plus the truth about each invoice.

Why: the scorer has to be trained, tested and demonstrated without real personal data,
and a model can only be judged on data whose answers are known. The simulation plants
irregular invoices the way they appear in Swedish home care under LOV (hours not delivered,
billing after death or during a hospital stay, staff at two places at once, phoenix
companies, invented visits, billing the grant instead of the delivery, wrong rates, services
that were never granted) at a minority of providers, and puts honest noise everywhere else
(rounding, manual corrections, months slightly over the grant, register events at honest
providers), so that a model has to work for its score.

The function is pure: a config in, frames out. File I/O lives in `tillit.data.io`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tillit.config import SimulationConfig
from tillit.data.contract import TABLES
from tillit.data.vocabulary import SERVICE_TYPES, VISIT_METHODS
from tillit.ops import progress
from tillit.simulate.care import _make_hospital_stays, _make_segments
from tillit.simulate.common import (
    _DISTRICT_NAMES,
    SCHEMES,
    SimulatedMunicipality,
    _calendar,
    _dates,
    _ids,
    _org_number,
    _str,
)
from tillit.simulate.contacts import add_contacts
from tillit.simulate.honest_odd import HONEST_PATTERNS, apply_honest_odd, draw_honest_odd
from tillit.simulate.invoices import _audits, _build_invoices, _tariffs
from tillit.simulate.messy import PADDED_VISITS, apply_messy, draw_parameters, override_levels
from tillit.simulate.population import _make_clients, _make_providers
from tillit.simulate.provider_truth import add_provider_truth
from tillit.simulate.register import _register
from tillit.simulate.schemes import _key, _plan_schemes
from tillit.simulate.visits import _generate_visits

# Every file `tillit simulate` writes besides its manifest: all `--overwrite` may replace.
SIMULATED_FILES = frozenset(
    [f"{name}{suffix}" for name in TABLES for suffix in (".parquet", ".csv")]
    + ["truth.parquet", "provider_truth.parquet", "honest_patterns.parquet", "link_truth.parquet"]
)


def simulate(
    config: SimulationConfig, levels: Mapping[str, float] | None = None
) -> SimulatedMunicipality:
    """Simulate one municipality: contract tables plus the truth about every invoice.

    `config.profile` "messy" draws noise levels from the seed (`draw_parameters`), widens the
    spread of provider sizes, and lays honest registration and billing noise plus the
    padded-visits scheme over the tidy world, then honest care that looks odd
    (`honest_odd`, recorded per invoice in `honest_patterns`); "tidy" gives the same output
    as before profiles. `levels` overrides drawn messy levels by name (a bench's world of an
    unusual shape, e.g. many carers shared between providers); tidy refuses them.
    """
    messy = draw_parameters(config.seed) if config.profile == "messy" else None
    odd = draw_honest_odd(config.seed) if messy is not None else None
    if levels:
        if messy is None or odd is None:
            raise ValueError("levels override the messy profile's drawn levels; tidy has none")
        messy, odd = override_levels(messy, levels), override_levels(odd, levels)
        unknown = set(levels) - set(messy.as_dict()) - set(odd.as_dict())
        if unknown:
            raise ValueError(f"unknown messy levels: {sorted(unknown)}")
    if messy is not None:
        config = config.model_copy(update={"provider_size_sigma": messy.provider_size_sigma})
    rng = np.random.default_rng(config.seed)
    cal = _calendar(config.start, config.months)
    prov = _make_providers(rng, config, cal)
    cli = _make_clients(rng, config, cal)
    seg = _make_segments(rng, cal, prov, cli)
    stays, in_hosp = _make_hospital_stays(rng, config, cal, cli)
    progress.lap("population and care", "visits")
    vis, pools = _generate_visits(rng, cal, prov, cli, seg, in_hosp)
    progress.lap("visits", "schemes and invoices")
    dims = (cli.n, cal.months)

    # Granted hours per (provider, client, service, month): the largest monthly grant in force.
    regular = ~seg.shadow
    s_from = np.clip(seg.start[regular], 0, cal.n_days - 1)
    s_to = np.clip(seg.end[regular], 0, cal.n_days - 1)
    ok = (seg.end[regular] >= 0) & (seg.start[regular] < cal.n_days)
    m_a, m_b = cal.month_of_day[s_from[ok]], cal.month_of_day[s_to[ok]]
    n_m = m_b - m_a + 1
    rep = np.repeat(np.arange(n_m.size), n_m)
    months = np.repeat(m_a, n_m) + np.arange(rep.size) - np.repeat(np.cumsum(n_m) - n_m, n_m)
    gk = _key(
        seg.provider[regular][ok][rep],
        seg.client[regular][ok][rep],
        seg.service[regular][ok][rep],
        months,
        dims,
    )
    granted = pd.Series(seg.hours[regular][ok][rep]).groupby(gk).max()

    plan = _plan_schemes(rng, config, cal, prov, cli, vis, pools, granted)
    tariffs = _tariffs(rng, cal)
    inv = _build_invoices(rng, config, cal, prov, cli, plan, granted, tariffs)
    aud = _audits(rng, config, cal, inv)
    clients_per_provider = np.bincount(seg.provider, minlength=prov.n)
    events, persons = _register(rng, cal, prov, clients_per_provider)
    progress.lap("schemes and invoices", "tables")

    # Identifiers: providers numbered in order of approval, the rest in table order.
    prov_order = np.lexsort((np.arange(prov.n), prov.approved))
    prov_ids = np.empty(prov.n, dtype=object)
    prov_ids[prov_order] = _ids("P", prov.n, 4)
    client_ids = _ids("C", cli.n, 5)
    used_staff = np.unique(plan.visits.staff)
    staff_ids_used = _ids("S", used_staff.size, 5)[rng.permutation(used_staff.size)]
    person_ids = _ids("R", int(persons["person"].max()) + 1, 5)[
        rng.permutation(int(persons["person"].max()) + 1)
    ]

    org = set()
    org_numbers = []
    for p in range(prov.n):
        o = _org_number(rng, prov.legal_form[p])
        while o in org:
            o = _org_number(rng, prov.legal_form[p])
        org.add(o)
        org_numbers.append(o)
    providers = pd.DataFrame(
        {
            "provider_id": _str(prov_ids),
            "org_number": _str(org_numbers),
            "legal_form": _str(prov.legal_form),
            "registered_on": _dates(cal, prov.registered),
            "approved_on": _dates(cal, prov.approved),
            "terminated_on": _dates(cal, prov.terminated),
        }
    )
    providers = providers.iloc[prov_order].reset_index(drop=True)

    provider_events = pd.DataFrame(
        {
            "provider_id": _str(prov_ids[events["provider"].to_numpy()]),
            "event_date": _dates(cal, events["day"].to_numpy()),
            "event_type": _str(events["event_type"].to_numpy()),
            "amount_sek": events["amount_sek"].to_numpy(dtype=np.float64),
        }
    )
    provider_persons = pd.DataFrame(
        {
            "provider_id": _str(prov_ids[persons["provider"].to_numpy()]),
            "person_id": _str(person_ids[persons["person"].to_numpy()]),
            "role": _str(persons["role"].to_numpy()),
            "from_date": _dates(cal, persons["from"].to_numpy()),
            "to_date": _dates(cal, persons["to"].to_numpy()),
        }
    )
    clients = pd.DataFrame(
        {
            "client_id": _str(client_ids),
            "birth_year": cli.birth_year.astype(np.int64),
            "district": _str(np.array(_DISTRICT_NAMES, dtype=object)[cli.district]),
            "deceased_on": _dates(cal, cli.death),
        }
    )

    g_order = np.lexsort((seg.start[regular], seg.service[regular], seg.client[regular]))
    g_idx = np.flatnonzero(regular)[g_order]
    grants = pd.DataFrame(
        {
            "grant_id": _str(_ids("G", g_idx.size, 6)),
            "client_id": _str(client_ids[seg.client[g_idx]]),
            "provider_id": _str(prov_ids[seg.provider[g_idx]]),
            "service_type": _str(np.array(SERVICE_TYPES, dtype=object)[seg.service[g_idx]]),
            "hours_per_month": seg.hours[g_idx],
            "valid_from": _dates(cal, seg.start[g_idx]),
            "valid_to": _dates(cal, seg.valid_to[g_idx]),
        }
    )
    stays = stays.sort_values(["client", "admit"], kind="stable")
    hospital_stays = pd.DataFrame(
        {
            "client_id": _str(client_ids[stays["client"].to_numpy(dtype=np.int64)]),
            "admitted_on": _dates(cal, stays["admit"].to_numpy(dtype=np.int64)),
            "discharged_on": _dates(cal, stays["discharge"].to_numpy(dtype=np.int64)),
        }
    )

    v = plan.visits
    v_order = np.lexsort((v.client, v.provider, v.start_s))
    v = v.take(v_order)
    start_ns = (cal.d0.astype("datetime64[s]") + v.start_s).astype("datetime64[ns]")
    end_ns = (cal.d0.astype("datetime64[s]") + v.start_s + v.dur_s).astype("datetime64[ns]")
    staff_pos = np.searchsorted(used_staff, v.staff)
    visits = pd.DataFrame(
        {
            "visit_id": _str(_ids("V", v_order.size, 7)),
            "provider_id": _str(prov_ids[v.provider]),
            "client_id": _str(client_ids[v.client]),
            "staff_id": _str(staff_ids_used[staff_pos]),
            "service_type": _str(np.array(SERVICE_TYPES, dtype=object)[v.service]),
            "start_at": pd.Series(start_ns),
            "end_at": pd.Series(end_ns),
            "method": _str(np.array(VISIT_METHODS, dtype=object)[v.method]),
        }
    )

    invoice_ids = _ids("I", len(inv), 7)
    invoices = pd.DataFrame(
        {
            "invoice_id": _str(invoice_ids),
            "provider_id": _str(prov_ids[inv["provider"].to_numpy()]),
            "client_id": _str(client_ids[inv["client"].to_numpy()]),
            "period": _str(np.array(cal.periods, dtype=object)[inv["month"].to_numpy()]),
            "service_type": _str(np.array(SERVICE_TYPES, dtype=object)[inv["service"].to_numpy()]),
            "billed_hours": inv["billed_hours"].to_numpy(dtype=np.float64),
            "amount_sek": inv["amount_sek"].to_numpy(dtype=np.float64),
            "submitted_on": _dates(cal, inv["submitted"].to_numpy()),
        }
    )
    audit_outcomes = pd.DataFrame(
        {
            "invoice_id": _str(invoice_ids[aud["row"].to_numpy(dtype=np.int64)]),
            "reviewed_on": _dates(cal, aud["reviewed"].to_numpy(dtype=np.int64)),
            "outcome": _str(aud["outcome"].to_numpy()),
            "recovered_sek": aud["recovered_sek"].to_numpy(dtype=np.float64),
            "scheme": _str(aud["scheme"].to_numpy()),
            # How the invoice came to be reviewed: by the municipality's rule or at random.
            "selection": _str(aud["selection"].to_numpy()),
        }
    )
    s_code = inv["scheme"].to_numpy()
    truth = pd.DataFrame(
        {
            "invoice_id": _str(invoice_ids),
            "irregular": s_code >= 0,
            "scheme": _str(np.where(s_code >= 0, np.array(SCHEMES, dtype=object)[s_code], np.nan)),
            "excess_sek": inv["excess_sek"].to_numpy(dtype=np.float64),
        }
    )
    tables = {
        "providers": providers,
        "provider_events": provider_events,
        "provider_persons": provider_persons,
        "clients": clients,
        "grants": grants,
        "hospital_stays": hospital_stays,
        "visits": visits,
        "invoices": invoices,
        "tariffs": tariffs.astype({"service_type": "str", "year": "int64", "rate_sek": "float64"}),
        "audit_outcomes": audit_outcomes,
    }
    parameters: dict[str, float] = {}
    honest_patterns = None
    if messy is not None and odd is not None:
        tables, truth = apply_messy(tables, truth, messy, config.seed)
        tables, honest_patterns = apply_honest_odd(tables, truth, odd, config.seed)
        parameters = messy.as_dict() | odd.as_dict()
    tables, provider_truth = add_provider_truth(
        config.seed, tables, truth, set(prov_ids[prov.is_successor])
    )
    # Contract v1.3: contact facts and person names, with the truth of who is who.
    phoenix_pairs = {
        str(prov_ids[s]): str(prov_ids[prov.phoenix_old[s]])
        for s in np.flatnonzero(prov.is_successor)
    }
    tables, link_truth = add_contacts(
        config.seed, tables, phoenix_pairs, config.contact_phoenix_share
    )
    return SimulatedMunicipality(
        tables=tables,
        truth=truth,
        parameters=parameters,
        provider_truth=provider_truth,
        honest_patterns=honest_patterns,
        link_truth=link_truth,
    )


__all__ = ["HONEST_PATTERNS", "PADDED_VISITS", "SCHEMES", "SimulatedMunicipality", "simulate"]
