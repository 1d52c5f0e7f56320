"""The one HTML shell of tillit's pages: skeleton and stylesheet, on screen and printed on A4.

The home-care report, the provider page and the table-mode report are each a body
in this shell, so they look alike and print alike: a second copy of a page head or
a CSS block drifts. Printed, each provider's case starts on a new page, an invoice
(or a table row) is never split over two, charts scale to the page and long table
cells wrap. A page is self-contained: no script, no font or style sheet from elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1a1a1a;max-width:1100px}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.25rem;margin-top:2rem;border-bottom:2px solid #ddd}
h3{font-size:1.05rem;margin:1.4rem 0 .4rem;background:#f3f3f3;padding:.3rem .5rem}
.meta{color:#555;font-size:.85rem}
.lead{font-size:1.05rem}
.cards{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}
.card{border:1px solid #ccc;border-radius:6px;padding:.6rem .9rem;min-width:150px}
.card b{display:block;font-size:1.35rem}
table{border-collapse:collapse;width:100%;font-size:.85rem;margin-bottom:1rem}
th,td{border:1px solid #ddd;padding:.3rem .45rem;vertical-align:top;text-align:left;overflow-wrap:break-word}
td.id{white-space:nowrap}
th{background:#fafafa} td.num,th.num{text-align:right;overflow-wrap:normal} td.num{white-space:nowrap}
table.providers{table-layout:fixed;width:min(calc(100vw - 4rem),1500px)}
.providers th:nth-child(1){width:4%} .providers th:nth-child(2){width:10%} .providers th:nth-child(3){width:5%}
.providers th:nth-child(4){width:7%} .providers th:nth-child(5){width:8%} .providers th:nth-child(6){width:7%}
.providers th:nth-child(7){width:7%} .providers th:nth-child(8){width:8%} .providers th:nth-child(9){width:25%}
.providers th:nth-child(10){width:19%} .providers td.num{white-space:normal}
.providers th{overflow-wrap:normal;word-break:normal;hyphens:manual;font-size:.8rem}
td .sub{display:block;color:#444;font-size:.8rem}
.invoice{border:1px solid #ccc;border-radius:6px;padding:.5rem .8rem;margin:.6rem 0;break-inside:avoid}
.invoice .head{display:flex;gap:1.2rem;flex-wrap:wrap;font-size:.9rem}
.tag{display:inline-block;border-radius:4px;padding:0 .35rem;font-size:.8rem;margin:0 .3rem .1rem 0;border:1px solid #999}
.tag.finding{background:#fde2e1;border-color:#c0392b} .tag.random{background:#e8f0fe;border-color:#3461c1}
.tag.capacity{background:#fff4d6;border-color:#b7950b} .tag.quarantined{background:#eee}
ul{margin:.3rem 0 .3rem 1.1rem;padding:0} li{margin:.15rem 0}
.finding-list li{color:#8e1f14}
.row{border-top:1px solid #ddd;padding:.6em 0;break-inside:avoid} .note{color:#555}
.charts{display:flex;flex-wrap:wrap;gap:1rem} .charts div{flex:1;min-width:300px}
.charts p{font-size:.8rem;margin:.2rem 0;color:#444}
.charts svg{width:100%;height:auto;max-width:560px}
@page{size:A4;margin:14mm 12mm}
@media print{
 body{margin:0;max-width:none;font-size:9.5pt}
 h1{font-size:15pt} h2{font-size:12.5pt;break-after:avoid} h3{font-size:11pt;break-after:avoid}
 h3.case{break-before:page}
 table{font-size:8pt} th,td{padding:2px 4px} thead{display:table-header-group} tr{break-inside:avoid}
 .invoice{border-color:#999;padding:.3rem .5rem;break-inside:auto} .invoice .head{break-after:avoid}
 .charts{display:block} .charts div{min-width:0;margin-bottom:.2rem;break-inside:avoid} .charts svg{max-width:125mm}
 .cards{gap:.4rem} .card{padding:.3rem .5rem;min-width:0} .card b{font-size:12pt}
 a{color:inherit;text-decoration:none}
 table.providers{width:100%}
 .providers td.reasons,.providers td.facts{font-size:7.5pt} .providers th{font-size:6.5pt;padding:2px}
}
"""


def page(title: str, body: Iterable[str], language: str) -> str:
    """A whole page: the skeleton, the stylesheet, `title` (escaped) and the body's parts.

    The body's parts are HTML already (each escaped where it was made), joined by lines.
    """
    return (
        f'<!DOCTYPE html>\n<html lang="{escape(language)}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


__all__ = ["PAGE_CSS", "page"]
