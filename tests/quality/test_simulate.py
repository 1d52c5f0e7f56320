"""Tests of the simulated municipality: determinism, contract facts and planted schemes."""

import numpy as np
import pandas as pd
import pydantic
import pytest

from tillit.config import SimulationConfig
from tillit.data.contract import TABLES
from tillit.data.validate import validate_tables
from tillit.simulate import SCHEMES, SimulatedMunicipality, simulate

COLUMNS = {
    "providers": [
        "provider_id",
        "org_number",
        "legal_form",
        "registered_on",
        "approved_on",
        "terminated_on",
    ],
    "provider_events": ["provider_id", "event_date", "event_type", "amount_sek"],
    "provider_persons": [
        "provider_id",
        "person_id",
        "role",
        "from_date",
        "to_date",
        "name_token",
        "birth_year",
    ],
    "provider_contacts": [
        "provider_id",
        "valid_from",
        "valid_to",
        "street_address",
        "postcode",
        "phone_number",
        "bankgiro",
        "plusgiro",
        "email_domain",
    ],
    "clients": ["client_id", "birth_year", "district", "deceased_on"],
    "grants": [
        "grant_id",
        "client_id",
        "provider_id",
        "service_type",
        "hours_per_month",
        "valid_from",
        "valid_to",
    ],
    "hospital_stays": ["client_id", "admitted_on", "discharged_on"],
    "visits": [
        "visit_id",
        "provider_id",
        "client_id",
        "staff_id",
        "service_type",
        "start_at",
        "end_at",
        "method",
    ],
    "invoices": [
        "invoice_id",
        "provider_id",
        "client_id",
        "period",
        "service_type",
        "billed_hours",
        "amount_sek",
        "submitted_on",
    ],
    "tariffs": ["service_type", "year", "rate_sek"],
    "audit_outcomes": [
        "invoice_id",
        "reviewed_on",
        "outcome",
        "recovered_sek",
        "scheme",
        "selection",
    ],
}
DATE_COLUMNS = {
    "registered_on",
    "approved_on",
    "terminated_on",
    "event_date",
    "from_date",
    "to_date",
    "deceased_on",
    "valid_from",
    "valid_to",
    "admitted_on",
    "discharged_on",
    "submitted_on",
    "reviewed_on",
    "start_at",
    "end_at",
}
FLOAT_COLUMNS = {"amount_sek", "hours_per_month", "billed_hours", "rate_sek", "recovered_sek"}
INT_COLUMNS = {"birth_year", "year"}
SERVICE_TYPES = {"personal_care", "home_service", "double_staffing", "night_care"}
EVENT_TYPES = {
    "owner_change",
    "board_change",
    "address_change",
    "f_tax_revoked",
    "f_tax_restored",
    "employer_registration_revoked",
    "tax_debt_registered",
    "tax_debt_cleared",
    "complaint",
    "inspection_remark",
    "sanction",
    "contract_warning",
}
INVOICE_KEY = ["provider_id", "client_id", "service_type", "period"]


@pytest.fixture(scope="module")
def sim() -> SimulatedMunicipality:
    # Every phoenix of this world shares only an address and a bank giro (contract v1.3).
    return simulate(SimulationConfig(clients=300, months=6, seed=7, contact_phoenix_share=1.0))


@pytest.fixture(scope="module")
def invoice_visits(sim: SimulatedMunicipality) -> pd.DataFrame:
    """Visits with the invoice they belong to and its truth."""
    visits = sim.tables["visits"]
    visits = visits.assign(
        period=visits["start_at"].dt.strftime("%Y-%m"),
        hours=(visits["end_at"] - visits["start_at"]).dt.total_seconds() / 3600,
    )
    invoices = sim.tables["invoices"].merge(sim.truth, on="invoice_id")
    return visits.merge(
        invoices[[*INVOICE_KEY, "invoice_id", "irregular", "scheme"]], on=INVOICE_KEY
    )


def luhn_valid(number: str) -> bool:
    """Independent Luhn check over all ten digits (check digit last)."""
    total = 0
    for i, ch in enumerate(reversed(number.replace("-", ""))):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def test_luhn_reference_numbers() -> None:
    assert luhn_valid("556016-0680")
    assert not luhn_valid("556016-0681")


def test_same_seed_gives_identical_frames() -> None:
    config = SimulationConfig(clients=200, months=4, seed=3)
    a, b = simulate(config), simulate(config)
    assert a.tables.keys() == b.tables.keys()
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    pd.testing.assert_frame_equal(a.truth, b.truth)


def test_different_seed_gives_different_data() -> None:
    a = simulate(SimulationConfig(clients=200, months=4, seed=3))
    b = simulate(SimulationConfig(clients=200, months=4, seed=4))
    assert not a.tables["invoices"].equals(b.tables["invoices"])
    assert not a.tables["visits"]["start_at"].equals(b.tables["visits"]["start_at"])


def test_config_rejects_unknown_keys_and_bad_period() -> None:
    with pytest.raises(pydantic.ValidationError):
        SimulationConfig(clientz=10)
    with pytest.raises(pydantic.ValidationError):
        SimulationConfig(start="2025-13")


def test_tables_have_exact_contract_columns_and_dtypes(sim: SimulatedMunicipality) -> None:
    assert set(sim.tables) == set(COLUMNS)
    for name, columns in COLUMNS.items():
        frame = sim.tables[name]
        assert list(frame.columns) == columns, name
        assert len(frame) > 0, name
        for column in columns:
            dtype = frame[column].dtype
            if column in DATE_COLUMNS:
                assert dtype == "datetime64[ns]", (name, column, dtype)
            elif column in FLOAT_COLUMNS or (name, column) == ("provider_persons", "birth_year"):
                assert dtype == np.float64, (name, column, dtype)
            elif column in INT_COLUMNS:
                assert dtype == np.int64, (name, column, dtype)
            else:
                assert pd.api.types.is_string_dtype(dtype), (name, column, dtype)
    assert list(sim.truth.columns) == ["invoice_id", "irregular", "scheme", "excess_sek"]


def test_keys_are_unique_and_references_resolve(sim: SimulatedMunicipality) -> None:
    t = sim.tables
    for name, key in [
        ("providers", ["provider_id"]),
        ("providers", ["org_number"]),
        ("clients", ["client_id"]),
        ("grants", ["grant_id"]),
        ("visits", ["visit_id"]),
        ("invoices", ["invoice_id"]),
        ("invoices", INVOICE_KEY),
        ("tariffs", ["service_type", "year"]),
        ("audit_outcomes", ["invoice_id"]),
    ]:
        assert not t[name].duplicated(key).any(), (name, key)
    providers, clients = set(t["providers"]["provider_id"]), set(t["clients"]["client_id"])
    for name in ["provider_events", "provider_persons", "grants", "visits", "invoices"]:
        assert t[name]["provider_id"].isin(providers).all(), name
    for name in ["grants", "hospital_stays", "visits", "invoices"]:
        assert t[name]["client_id"].isin(clients).all(), name
    assert t["audit_outcomes"]["invoice_id"].isin(t["invoices"]["invoice_id"]).all()


def test_values_dates_and_ranges_follow_the_contract(sim: SimulatedMunicipality) -> None:
    t = sim.tables
    p = t["providers"]
    assert p["org_number"].str.fullmatch(r"\d{6}-\d{4}").all()
    assert p["org_number"].map(luhn_valid).all()
    assert p["legal_form"].isin({"AB", "HB", "KB", "EF", "EK", "other"}).all()
    applicant = p["approved_on"].isna()  # contract v1.2: applicants, added with provider truth
    assert (p.loc[~applicant, "approved_on"] >= p.loc[~applicant, "registered_on"]).all()
    assert (p["terminated_on"].isna() | (p["terminated_on"] >= p["approved_on"])).all()
    assert p.loc[applicant, "terminated_on"].isna().all()

    e = t["provider_events"]
    assert e["event_type"].isin(EVENT_TYPES).all()
    tax = e["event_type"].str.startswith("tax_debt_")
    assert (e.loc[tax, "amount_sek"] >= 0).all() and e.loc[~tax, "amount_sek"].isna().all()

    pp = t["provider_persons"]
    assert pp["role"].isin({"owner", "board_member", "ceo", "signatory"}).all()
    assert (pp["to_date"].isna() | (pp["to_date"] >= pp["from_date"])).all()

    assert t["clients"]["birth_year"].between(1900, 2025).all()
    g = t["grants"]
    assert g["service_type"].isin(SERVICE_TYPES).all()
    assert ((g["hours_per_month"] > 0) & (g["hours_per_month"] <= 744)).all()
    assert (g["valid_to"].isna() | (g["valid_to"] >= g["valid_from"])).all()
    h = t["hospital_stays"]
    assert (h["discharged_on"].isna() | (h["discharged_on"] >= h["admitted_on"])).all()

    v = t["visits"]
    length = v["end_at"] - v["start_at"]
    assert (length > pd.Timedelta(0)).all() and (length <= pd.Timedelta(hours=24)).all()
    assert v["method"].isin({"nfc", "app", "manual"}).all()
    assert v["service_type"].isin(SERVICE_TYPES).all()

    i = t["invoices"]
    assert i["period"].str.fullmatch(r"\d{4}-\d{2}").all()
    assert ((i["billed_hours"] >= 0) & (i["billed_hours"] <= 744)).all()
    assert (i["amount_sek"] >= 0).all()
    assert (i["submitted_on"] >= pd.to_datetime(i["period"] + "-01")).all()
    assert (t["tariffs"]["rate_sek"] > 0).all()

    a = t["audit_outcomes"]
    assert a["outcome"].isin({"confirmed", "cleared"}).all()
    assert (a["recovered_sek"].isna() | (a["recovered_sek"] >= 0)).all()


def test_every_scheme_appears_at_about_the_configured_share(sim: SimulatedMunicipality) -> None:
    truth = sim.truth
    assert set(truth["scheme"].dropna()) == set(SCHEMES)
    assert 0.02 <= truth["irregular"].mean() <= 0.045
    assert truth["scheme"].isna().eq(~truth["irregular"]).all()
    assert (truth.loc[truth["irregular"], "excess_sek"] > 0).all()
    assert (truth.loc[~truth["irregular"], "excess_sek"] == 0).all()
    assert truth["invoice_id"].tolist() == sim.tables["invoices"]["invoice_id"].tolist()


def test_irregular_invoices_concentrate_at_few_providers(sim: SimulatedMunicipality) -> None:
    per_provider = (
        sim.tables["invoices"]
        .merge(sim.truth, on="invoice_id")
        .groupby("provider_id")["irregular"]
        .sum()
    )
    top = per_provider.sort_values(ascending=False)
    n_top = max(1, round(0.3 * len(top)))
    assert top.iloc[:n_top].sum() >= 0.6 * top.sum()
    assert (top > 0).sum() >= 3  # some isolated irregularities elsewhere too


def test_honest_invoices_bill_close_to_registered_hours(invoice_visits: pd.DataFrame, sim) -> None:
    registered = invoice_visits.groupby("invoice_id")["hours"].sum()
    invoices = sim.tables["invoices"].merge(sim.truth, on="invoice_id")
    honest = invoices[~invoices["irregular"]].set_index("invoice_id")
    gap = (honest["billed_hours"] - registered.reindex(honest.index).fillna(0)).abs()
    assert gap.median() <= 0.5
    assert gap.quantile(0.95) <= 2.0
    assert gap.max() <= 3.0


def test_overbilling_bills_more_than_registered(invoice_visits: pd.DataFrame, sim) -> None:
    registered = invoice_visits.groupby("invoice_id")["hours"].sum()
    invoices = sim.tables["invoices"].merge(sim.truth, on="invoice_id").set_index("invoice_id")
    over = invoices[invoices["scheme"] == "overbilling"]
    ratio = over["billed_hours"] / registered.reindex(over.index)
    assert (ratio >= 1.05).all()


def test_honest_staff_are_never_at_two_places_at_once(invoice_visits: pd.DataFrame) -> None:
    def overlaps(frame: pd.DataFrame) -> int:
        frame = frame.sort_values(["staff_id", "start_at"])
        same = frame["staff_id"].to_numpy()[1:] == frame["staff_id"].to_numpy()[:-1]
        early = frame["start_at"].to_numpy()[1:] < frame["end_at"].to_numpy()[:-1]
        return int((same & early).sum())

    assert overlaps(invoice_visits[~invoice_visits["irregular"]]) == 0
    double = invoice_visits[invoice_visits["scheme"] == "staff_double_booking"]["staff_id"]
    assert overlaps(invoice_visits[invoice_visits["staff_id"].isin(double)]) > 0


def test_regular_visits_respect_death_and_hospital(invoice_visits: pd.DataFrame, sim) -> None:
    t = sim.tables
    day = invoice_visits["start_at"].dt.normalize()
    deceased = invoice_visits["client_id"].map(t["clients"].set_index("client_id")["deceased_on"])
    after_death = day > deceased
    assert not (after_death & ~invoice_visits["irregular"]).any()
    assert after_death[invoice_visits["scheme"] == "billing_after_death"].any()

    stays = invoice_visits.assign(day=day).merge(t["hospital_stays"], on="client_id")
    inside = (stays["day"] > stays["admitted_on"]) & (
        stays["discharged_on"].isna() | (stays["day"] < stays["discharged_on"])
    )
    assert not (inside & ~stays["irregular"]).any()
    assert inside[stays["scheme"] == "hospital_billing"].any()


def test_phoenix_successor_has_predecessors_board_or_premises_and_clients(
    sim: SimulatedMunicipality,
) -> None:
    from tillit.data.contacts import normalise_facts

    t = sim.tables
    invoices = t["invoices"].merge(sim.truth, on="invoice_id")
    successor = invoices.loc[invoices["scheme"] == "phoenix", "provider_id"].unique()
    assert len(successor) >= 1
    persons = t["provider_persons"]
    providers = t["providers"].set_index("provider_id")
    events = t["provider_events"]
    truth = sim.link_truth.set_index("record_id")
    facts = ("street_address", "bankgiro", "phone_number", "email_domain")
    contacts = normalise_facts(t["provider_contacts"], facts)
    for new in successor:
        people = set(persons.loc[persons["provider_id"] == new, "person_id"])
        others = persons[persons["person_id"].isin(people) & (persons["provider_id"] != new)]
        old = others["provider_id"].unique()
        if truth.loc[new, "note"] == "contact_phoenix":
            # No shared person: only the predecessor's last address and its bank giro.
            assert len(old) == 0
            old = [truth.loc[new, "entity_id"]]
            mine = contacts[contacts["provider_id"] == new].iloc[0]
            last = contacts[contacts["provider_id"] == old[0]].iloc[-1]
            assert mine["street_address"] == last["street_address"]
            shared = {
                f
                for f in facts
                if mine[f] in set(contacts.loc[contacts["provider_id"] == old[0], f])
            }
            assert shared == {"street_address", "bankgiro"}
        assert len(old) >= 1
        assert providers.loc[old, "terminated_on"].notna().any()
        warned = events[events["provider_id"].isin(old)]["event_type"]
        assert warned.isin({"sanction", "contract_warning"}).any()
        assert providers.loc[new, "approved_on"] > providers.loc[old, "approved_on"].min()
        new_clients = set(invoices.loc[invoices["provider_id"] == new, "client_id"])
        old_clients = set(invoices.loc[invoices["provider_id"].isin(old), "client_id"])
        assert len(new_clients & old_clients) >= 0.5 * len(new_clients)


def test_audits_follow_the_municipalitys_practice(sim: SimulatedMunicipality) -> None:
    t = sim.tables
    invoices = t["invoices"].merge(sim.truth, on="invoice_id")
    audits = t["audit_outcomes"].merge(invoices, on="invoice_id")
    assert not (audits["period"] == invoices["period"].max()).any()
    assert (audits["reviewed_on"] >= audits["submitted_on"] + pd.Timedelta(days=14)).all()
    past = (invoices["period"] < invoices["period"].max()).sum()
    assert 0.5 * 0.04 * past <= len(audits) <= 1.2 * 0.04 * past
    assert (audits.loc[audits["outcome"] == "confirmed", "irregular"]).mean() >= 0.8
    assert not audits.loc[audits["outcome"] == "cleared", "recovered_sek"].notna().any()
    assert audits["selection"].isin({"rule", "random_check"}).all()
    random_share = (audits["selection"] == "random_check").mean()
    assert 0.15 <= random_share <= 0.5
    # Reviews pick irregular invoices far more often than chance, but not only them.
    assert audits["irregular"].mean() > 2 * invoices["irregular"].mean()
    assert audits["irregular"].mean() < 0.9


def test_visit_volume_is_plausible(sim: SimulatedMunicipality) -> None:
    visits = sim.tables["visits"]
    per_client_month = visits.groupby(
        [visits["client_id"], visits["start_at"].dt.strftime("%Y-%m")]
    ).size()
    assert 20 <= per_client_month.median() <= 120
    assert 0.75 <= (visits["method"] == "nfc").mean() <= 0.95
    minutes = (visits["end_at"] - visits["start_at"]).dt.total_seconds() / 60
    assert 15 <= minutes.median() <= 60


def test_output_passes_the_contract_validation(sim: SimulatedMunicipality) -> None:
    for name, spec in TABLES.items():
        # A one-municipality export leaves out the pooled exports' optional columns only.
        left_out = [c for c in spec.columns if c not in sim.tables[name].columns]
        assert set(left_out) <= set(spec.optional_columns), (name, left_out)
        assert list(sim.tables[name].columns) == [c for c in spec.columns if c not in left_out], (
            name
        )
    result = validate_tables(sim.tables)
    assert result.quarantine.empty, result.quarantine.head().to_string()


def test_provider_truth_marks_phoenixes_majorities_and_linked_applicants(
    sim: SimulatedMunicipality,
) -> None:
    from tillit.simulate.provider_truth import PROVIDER_TRUTH_COLUMNS

    pt = sim.provider_truth
    assert pt is not None and tuple(pt.columns) == PROVIDER_TRUTH_COLUMNS
    assert not pt.duplicated(["provider_id", "period"]).any()
    # Every provider-month with invoices is there, with the truth of its invoices.
    inv = sim.tables["invoices"].merge(sim.truth, on="invoice_id")
    counts = inv.groupby(["provider_id", "period"])["irregular"].agg(["size", "sum"])
    billed = pt[~pt["applicant"]].set_index(["provider_id", "period"])
    assert billed["n_invoices"].to_dict() == counts["size"].to_dict()
    assert billed["n_irregular"].to_dict() == counts["sum"].to_dict()
    majority = billed["irregular_invoice_share"] > 0.5
    assert (billed["irregular"] == (majority | billed["phoenix"])).all()
    assert billed["phoenix"].any()
    # Applicants: no approval date, no invoices; the irregular ones are led by a person who
    # led a sanctioned or terminated company.
    providers = sim.tables["providers"].set_index("provider_id")
    applicants = pt[pt["applicant"]]
    assert providers.loc[applicants["provider_id"], "approved_on"].isna().all()
    assert not sim.tables["invoices"]["provider_id"].isin(applicants["provider_id"]).any()
    persons = sim.tables["provider_persons"]
    events = sim.tables["provider_events"]
    bad = set(providers.index[providers["terminated_on"].notna()]) | set(
        events.loc[events["event_type"] == "sanction", "provider_id"]
    )
    for applicant in applicants.loc[applicants["irregular"], "provider_id"]:
        people = persons.loc[persons["provider_id"] == applicant, "person_id"]
        elsewhere = persons[persons["person_id"].isin(people) & persons["provider_id"].isin(bad)]
        assert len(elsewhere) > 0, applicant
    assert applicants["irregular"].any() and not applicants["irregular"].all()


def test_contact_facts_are_messy_and_honest_providers_share_some(
    sim: SimulatedMunicipality,
) -> None:
    from tillit.data.contacts import normalise_facts

    contacts = sim.tables["provider_contacts"]
    assert set(contacts["provider_id"]) == set(sim.tables["providers"]["provider_id"])
    assert contacts["street_address"].isna().any() and contacts["phone_number"].isna().any()
    canonical = normalise_facts(contacts, ("street_address", "bankgiro"))
    # One fact in several spellings, and honest providers sharing an address or a bank giro.
    spellings = contacts.groupby(canonical["bankgiro"])["bankgiro"].nunique()
    assert (spellings > 1).any()
    truth = sim.link_truth[sim.link_truth["record_table"] == "providers"]
    entity = truth.set_index("record_id")["entity_id"]
    for column in ("street_address", "bankgiro"):
        holders = canonical.dropna(subset=[column]).groupby(column)["provider_id"].unique()
        shared = [ps for ps in holders if len({entity[p] for p in ps}) > 1]
        assert shared, column
    # Persons: some listed under a local id too, with the same name token.
    persons = sim.tables["provider_persons"]
    local = sim.link_truth[sim.link_truth["note"] == "local_id"]
    local = local[local["entity_id"].isin(persons["person_id"])]  # also listed by its own id
    assert len(local) >= 3
    tokens = persons.drop_duplicates("person_id").set_index("person_id")["name_token"]
    same = (tokens[local["record_id"]].to_numpy() == tokens[local["entity_id"]].to_numpy()).mean()
    assert same >= 0.7
