"""chat-perf: a headless IRC client swarm that measures what users feel, and draws it.

The coordinator (``perf.coordinator``) starts worker processes (``perf.worker``), each a
``selectors`` loop over many raw sockets, so the generator is not the bottleneck; their
HDR histograms are merged (``perf.histogram``) into one summary (``perf.summary``; the
data files in ``perf.results``), which becomes charts (``perf.charts``) and reports
(``perf.report``).
"""
