"""Example tables for the table mode: card payments and transport-service trips.

Both are simulated worlds with known irregularities, so the whole chain can be run
and judged without real data. They are training grounds, not the exam.

Card payments follow the shape of the Fraud Detection Handbook's simulator:
customers with their own spending habits pay at a few terminals each; fraud comes
as compromised terminals (every payment there for four weeks), compromised cards
(a third of the card's payments for two weeks, at five times the usual amount) and
bursts (several large payments within two hours at unfamiliar terminals). Every
payment carries its label; the spec says the labels are known only after a delay.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tillit.errors import TillitError

KINDS = ("card-payments", "transport-trips")
_START = np.datetime64("2026-01-01T00:00:00", "s")


def simulate_table(kind: str, rows: int, seed: int = 7, days: int | None = None) -> pd.DataFrame:
    """A simulated table of about `rows` rows (exactly `rows` when enough were drawn)."""
    if kind not in KINDS:
        raise TillitError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if rows < 100:
        raise TillitError(f"--rows must be at least 100, not {rows}")
    if kind == "card-payments":
        return card_payments(rows, seed, days or int(np.clip(rows // 10_000, 30, 183)))
    return transport_trips(rows, seed, days or 182)


def _exact_rows(
    frame: pd.DataFrame, rows: int, rng: np.random.Generator, time: str
) -> pd.DataFrame:
    if len(frame) > rows:
        keep = np.sort(rng.choice(len(frame), rows, replace=False))
        frame = frame.iloc[keep]
    return frame.sort_values(time, kind="stable").reset_index(drop=True)


def card_payments(rows: int, seed: int = 7, days: int = 30) -> pd.DataFrame:
    """Card payments: TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT, TX_FRAUD."""
    rng = np.random.default_rng(seed)
    per_day = 2.0  # mean payments per customer and day
    n_customers = max(20, int(np.ceil(rows * 1.04 / (days * per_day))))
    n_terminals = 2 * n_customers
    mean_amount = rng.uniform(5, 100, n_customers)
    rate = rng.uniform(0, 2 * per_day, n_customers)
    own_terminals = rng.integers(0, n_terminals, (n_customers, 8))
    age_band = rng.choice(["18-29", "30-49", "50-64", "65+"], n_customers)

    counts = rng.poisson(np.repeat(rate[None, :], days, axis=0))  # days x customers
    day = np.repeat(np.arange(days), counts.sum(axis=1))
    customer = np.concatenate([np.repeat(np.arange(n_customers), row) for row in counts])
    n = len(customer)
    seconds = np.clip(rng.normal(43_200, 18_000, n), 0, 86_399).astype(np.int64)
    amount = np.abs(rng.normal(mean_amount[customer], mean_amount[customer] / 2))
    terminal = own_terminals[customer, rng.integers(0, 8, n)]
    fraud = np.zeros(n, dtype=np.int8)
    scenario = np.full(n, "", dtype=object)

    # Compromised terminals: every payment there for 28 days.
    terminal_hit = np.zeros((n_terminals, days + 28), dtype=bool)
    for d, count in enumerate(rng.poisson(n_terminals * 0.0004, days)):
        for t in rng.choice(n_terminals, count, replace=False):
            terminal_hit[t, d : d + 28] = True
    hit = terminal_hit[terminal, day]
    fraud[hit], scenario[hit] = 1, "compromised_terminal"
    # Compromised cards: a third of the card's payments for 14 days, five times the amount.
    card_hit = np.zeros((n_customers, days + 14), dtype=bool)
    for d, count in enumerate(rng.poisson(n_customers * 0.0006, days)):
        for c in rng.choice(n_customers, count, replace=False):
            card_hit[c, d : d + 14] = True
    hit = card_hit[customer, day] & (rng.random(n) < 1 / 3)
    amount[hit] *= 5
    fraud[hit], scenario[hit] = 1, "compromised_card"
    # Bursts: 3-8 large payments within two hours at terminals the card never used.
    n_bursts = max(2, round(days * n_customers * 0.0004))
    burst_customer = rng.integers(0, n_customers, n_bursts)
    burst_size = rng.integers(3, 9, n_bursts)
    b_customer = np.repeat(burst_customer, burst_size)
    b_day = np.repeat(rng.integers(0, days, n_bursts), burst_size)
    b_seconds = np.repeat(rng.integers(0, 86_400 - 7_200, n_bursts), burst_size)
    b_seconds = b_seconds + rng.integers(0, 7_200, len(b_customer))
    b_amount = mean_amount[b_customer] * rng.uniform(3, 8, len(b_customer))
    b_terminal = rng.integers(0, n_terminals, len(b_customer))

    day = np.concatenate([day, b_day])
    seconds = np.concatenate([seconds, b_seconds])
    customer = np.concatenate([customer, b_customer])
    terminal = np.concatenate([terminal, b_terminal])
    amount = np.concatenate([amount, b_amount])
    fraud = np.concatenate([fraud, np.ones(len(b_customer), dtype=np.int8)])
    scenario = np.concatenate([scenario, np.full(len(b_customer), "burst", dtype=object)])

    time = _START + (day.astype(np.int64) * 86_400 + seconds).astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "TX_DATETIME": pd.to_datetime(time),
            "CUSTOMER_ID": pd.Series(customer).map("C{:06d}".format),
            "TERMINAL_ID": pd.Series(terminal).map("T{:06d}".format),
            "TX_AMOUNT": np.round(amount, 2),
            "TX_FRAUD": fraud.astype(np.int64),
            "TX_FRAUD_SCENARIO": scenario.astype(str),
            "CUSTOMER_AGE_BAND": age_band[customer],
        }
    )
    frame = _exact_rows(frame, rows, rng, "TX_DATETIME")
    frame.insert(0, "TRANSACTION_ID", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def transport_trips(rows: int, seed: int = 7, days: int = 182) -> pd.DataFrame:
    """Transport-service trips (färdtjänst) billed by taxi firms, a fifth of them reviewed.

    Irregular trips: inflated distance (a vehicle that bills more km than the trip
    takes), phantom trips (a vehicle billing trips at night for travellers who did not
    travel) and double billing (the same trip billed twice minutes apart). Reviews
    pick a fifth of the trips at random: REVIEW_OUTCOME is 1, 0 or empty.
    """
    rng = np.random.default_rng(seed)
    n_travellers = max(20, rows // 60)
    n_vehicles = max(5, n_travellers // 15)
    n = int(rows * 1.02)
    traveller = rng.integers(0, n_travellers, n)
    vehicle = rng.integers(0, n_vehicles, n)
    home_distance = rng.gamma(2.0, 4.0, n_travellers)
    distance = np.maximum(0.5, home_distance[traveller] * rng.lognormal(0, 0.35, n))
    seconds = rng.integers(0, days * 86_400, n)
    hour = (seconds % 86_400) / 3600
    seconds = np.where((hour < 6) & (rng.random(n) < 0.8), seconds + 8 * 3600, seconds)
    duration = distance * rng.uniform(1.6, 2.6, n) + rng.uniform(3, 10, n)
    passengers = rng.choice([1, 1, 1, 2, 3], n)
    scenario = np.full(n, "", dtype=object)
    crooked = rng.choice(n_vehicles, max(1, n_vehicles // 12), replace=False)
    by_crooked = np.isin(vehicle, crooked)
    inflated = by_crooked & (rng.random(n) < 0.35)
    distance = np.where(inflated, distance * rng.uniform(1.6, 2.5, n), distance)
    scenario[inflated] = "inflated_distance"
    phantom = by_crooked & ~inflated & (rng.random(n) < 0.15)
    seconds = np.where(
        phantom, (seconds // 86_400) * 86_400 + rng.integers(0, 5 * 3600, n), seconds
    )
    distance = np.where(phantom, distance * 2.0, distance)
    scenario[phantom] = "phantom_trip"
    fare = 45 + 14.5 * distance + 0.5 * duration
    frame = pd.DataFrame(
        {
            "TRIP_START": pd.to_datetime(_START + seconds.astype("timedelta64[s]")),
            "TRAVELLER_ID": pd.Series(traveller).map("P{:05d}".format),
            "VEHICLE_ID": pd.Series(vehicle).map("V{:04d}".format),
            "DISTANCE_KM": np.round(distance, 1),
            "DURATION_MIN": np.round(duration, 0),
            "PASSENGERS": passengers,
            "FARE_SEK": np.round(fare, 0),
            "TRAVELLER_AGE_BAND": rng.choice(["under 65", "65-79", "80+"], n_travellers)[traveller],
            "SCENARIO": scenario.astype(str),
        }
    )
    doubles = frame[by_crooked & (rng.random(n) < 0.05)].copy()
    doubles["TRIP_START"] += pd.to_timedelta(rng.integers(2, 20, len(doubles)), unit="min")
    doubles["SCENARIO"] = "double_billing"
    frame = pd.concat([frame, doubles], ignore_index=True)
    irregular = (frame["SCENARIO"] != "").to_numpy()
    reviewed = rng.random(len(frame)) < 0.2
    frame["REVIEW_OUTCOME"] = pd.array(
        np.where(reviewed, irregular.astype(float), np.nan), dtype="Float64"
    )
    frame = _exact_rows(frame, rows, rng, "TRIP_START")
    frame.insert(0, "TRIP_ID", pd.Series(np.arange(1, len(frame) + 1)).map("TR{:07d}".format))
    return frame
