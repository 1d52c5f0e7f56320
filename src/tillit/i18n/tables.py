"""Table mode's words: its report, its reasons, its derived features and its risk list's headers.

What a table holds is the spec's business (its columns keep the names the spec gives
them); what tillit says about them is here, in both languages.
"""

from __future__ import annotations

from tillit.i18n.types import Tables

TABLE: Tables = {
    "en": {
        "page_title": "tillit risk list: {spec} {selection}",
        "title": "Risk list: {spec}, {selection}",
        "note": "A ranking for human review, not a decision: flagged rows are to be checked "
        "against the source data; nothing is stopped on the strength of this list.",
        "table": "table",
        "periods_scored": "periods scored",
        "rows_scored": "rows scored",
        "rows_quarantined": "rows quarantined",
        "flagged_for_review": "flagged for review",
        "flagged_count": "{flagged} ({random} random checks)",
        "model": "model",
        "model_version": "{name} version {version} (run {run})",
        "evaluation": "How good the model was on rows it never saw",
        "evaluation_basis": "{basis}; capacity {capacity}.",
        "no_evaluation": "no evaluation",
        "ranking": "ranking",
        "money_caught_at_k": "money caught@k",
        "ranking.combined": "combined",
        "ranking.lightgbm": "lightgbm",
        "ranking.isolation_forest": "isolation forest",
        "ranking.baseline_amount": "baseline amount",
        "flagged_rows": "Flagged rows ({n})",
        "first_shown": "The first {n} are shown; the risk list holds all.",
        "standing": "rank {rank}, risk {risk:.3f}",
        "not_scored": "not scored",
        "row": "period {period}, {standing}{amount}; {why}",
        "unknown": "unknown",
        "reason": "{description}: {value} (typical {typical})",
        "not_available": "n/a",
        "no_single_reason": "no single feature stands out; ranked by the mix",
        "unplaced": " (its time cannot be read: listed in every run until it is corrected)",
        "period.day": "{n} days",
        "period.day.one": "{n} day",
        "period.week": "{n} weeks",
        "period.week.one": "{n} week",
        "period.month": "{n} months",
        "period.month.one": "{n} month",
        "history.rows_before": "rows of the same {entity} in the {span} before",
        "history.amount_sum_before": "total {amount} of the same {entity} in the {span} before",
        "history.amount_mean_before": "mean {amount} of the same {entity} in the {span} before",
        "history.amount_over_mean": "{amount} as a multiple of the {entity}'s mean over {over}",
        "history.amount_z": "{amount} in standard deviations from the {entity}'s mean over {over}",
        "history.hours_since_previous": "hours since the {entity}'s previous row",
        "history.confirmed_before": "confirmed rows of the {entity} in {over} "
        "(labels at least {delay} old)",
        "history.confirmed_share_before": "share confirmed among the {entity}'s reviewed rows "
        "in {over} (labels at least {delay} old)",
        "column.period": "Period",
        "column.isolation_forest_score": "Isolation forest score",
        "column.lightgbm_score": "LightGBM score",
    },
    "sv": {
        "page_title": "tillit risklista: {spec} {selection}",
        "title": "Risklista: {spec}, {selection}",
        "note": "En rangordning för granskning av människor, inte ett beslut: flaggade rader "
        "ska kontrolleras mot källdata; ingenting stoppas på grund av den här listan.",
        "table": "tabell",
        "periods_scored": "bedömda perioder",
        "rows_scored": "bedömda rader",
        "rows_quarantined": "rader i karantän",
        "flagged_for_review": "flaggade för granskning",
        "flagged_count": "{flagged} ({random} stickprov)",
        "model": "modell",
        "model_version": "{name} version {version} (körning {run})",
        "evaluation": "Hur bra modellen var på rader den aldrig hade sett",
        "evaluation_basis": "{basis}; kapacitet {capacity}.",
        "no_evaluation": "ingen utvärdering",
        "ranking": "rangordning",
        "money_caught_at_k": "belopp funnet@k",
        "ranking.combined": "sammanvägd",
        "ranking.lightgbm": "lightgbm",
        "ranking.isolation_forest": "isolation forest",
        "ranking.baseline_amount": "jämförelse: beloppet",
        "flagged_rows": "Flaggade rader ({n})",
        "first_shown": "De första {n} visas; risklistan innehåller alla.",
        "standing": "plats {rank}, risk {risk:.3f}",
        "not_scored": "inte bedömd",
        "row": "period {period}, {standing}{amount}; {why}",
        "unknown": "okänd",
        "reason": "{description}: {value} (typiskt {typical})",
        "not_available": "saknas",
        "no_single_reason": "ingen enskild egenskap sticker ut; rangordnad av helheten",
        "unplaced": " (tiden går inte att läsa: listas i varje körning tills den är rättad)",
        "period.day": "{n} dagar",
        "period.day.one": "{n} dag",
        "period.week": "{n} veckor",
        "period.week.one": "{n} vecka",
        "period.month": "{n} månader",
        "period.month.one": "{n} månad",
        "history.rows_before": "rader med samma {entity} under {span} före raden",
        "history.amount_sum_before": "summa {amount} för samma {entity} under {span} före raden",
        "history.amount_mean_before": "medelvärde av {amount} för samma {entity} under "
        "{span} före raden",
        "history.amount_over_mean": "{amount} som multipel av medelvärdet för samma {entity} "
        "under {over}",
        "history.amount_z": "{amount} i standardavvikelser från medelvärdet för samma {entity} "
        "under {over}",
        "history.hours_since_previous": "timmar sedan föregående rad med samma {entity}",
        "history.confirmed_before": "bekräftade rader med samma {entity} under {over} "
        "(beslut minst {delay} gamla)",
        "history.confirmed_share_before": "andel bekräftade bland granskade rader med samma "
        "{entity} under {over} (beslut minst {delay} gamla)",
        "column.period": "Period",
        "column.isolation_forest_score": "Isolation forest-poäng",
        "column.lightgbm_score": "LightGBM-poäng",
    },
}
