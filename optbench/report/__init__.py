"""Convergence and throughput reports (``optbench report``) and result comparison
(``optbench compare``).

:mod:`.profiles` says what a report measures, :mod:`.runs` runs it (resumably, through
:mod:`optbench.sweep`), :mod:`.throughput` measures kernel speed (through
:mod:`optbench.throughput`), :mod:`.build` draws the figures (:mod:`.convergence`,
:mod:`.ranking`, :mod:`.ema`, :mod:`.history`, with the shared style of :mod:`.figures`) and
writes ``index.html`` and ``report.md`` (:mod:`.render_html`, :mod:`.render_markdown`) with the
data behind them; :mod:`.compare` sets two result sets side by side.
"""
