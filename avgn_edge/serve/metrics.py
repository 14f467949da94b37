"""Prometheus metrics of the service, read from the streams' own counters at scrape time.

A custom collector (prometheus-client's documented pattern for values that live elsewhere):
a stream that is removed simply stops appearing, and nothing is kept per scrape.

    avgn_model_info{bundle,model,precision,backend,emulated_gpu,...} 1
    avgn_stream_up{stream}                                        1 online, 0 otherwise
    avgn_snippets_total / avgn_decisions_total{stream}            counters
    avgn_snippets_per_second{stream}                              over the last ~10 s
    avgn_dropped_snippets_total{stream,reason}                    mailbox | deadline | late
    avgn_stale_ticks_total, avgn_reconnects_total, avgn_outages_total{stream}
    avgn_events_total{stream,label}                               event onsets
    avgn_stream_audio{stream,kind}                                1: the audio the stream has (camera:<codec>, source,
                                                                  mic:<device>, none)
    avgn_audio_gaps_total{stream}                                 snippets whose audio window was incomplete
    avgn_audio_gap_seconds_total{stream}                          sound the camera did not deliver (its own stream)
    avgn_audio_drift_seconds{stream}                              the camera's audio clock against its video clock
    avgn_decision_latency_seconds{stream}                         histogram, capture -> result
    avgn_batch_size{kind}                                         histogram: snippets | decisions per call
    avgn_inference_seconds{phase}                                 histogram: encode | decide per tick
    avgn_backend_failed_calls_total{phase}                        backend calls that failed (a remote server down)
    avgn_output_<counter>_total{stream,output}                   each output's counters (sinks/base.py): dropped,
                                                                  errors, and its own (MQTT published/lost/connects,
                                                                  clips written/deleted, ...); stream "" = all streams
    process_*                                                     prometheus-client's process collector
"""

from __future__ import annotations


def _hist(family, labels, h):
    family.add_metric(labels, h.cumulative(), h.sum)


def registry_for(service):
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily

    class Collector:
        def collect(self):
            streams = service.stream_list()
            info = InfoMetricFamily("avgn_model", "the model and backend serving")
            info.add_metric([], service.model_info())
            yield info
            g = GaugeMetricFamily
            c = CounterMetricFamily
            up = g("avgn_stream_up", "1 when the stream delivers snippets", labels=["stream"])
            rate = g("avgn_snippets_per_second", "snippets per second, last ~10 s", labels=["stream"])
            snippets = c("avgn_snippets", "snippets taken into the stream's window", labels=["stream"])
            decisions = c("avgn_decisions", "decisions made", labels=["stream"])
            dropped = c("avgn_dropped_snippets", "snippets dropped", labels=["stream", "reason"])
            stale = c("avgn_stale_ticks", "clock ticks with no new frame", labels=["stream"])
            reconnects = c("avgn_reconnects", "source reconnects and reopens", labels=["stream"])
            outages = c("avgn_outages", "times the stream went offline", labels=["stream"])
            events = c("avgn_events", "event onsets", labels=["stream", "label"])
            akind = g("avgn_stream_audio", "the audio the stream has", labels=["stream", "kind"])
            agaps = c("avgn_audio_gaps", "snippets whose audio window was incomplete", labels=["stream"])
            asecs = c("avgn_audio_gap_seconds", "sound the camera did not deliver", labels=["stream"])
            drift = g("avgn_audio_drift_seconds", "audio clock against video clock", labels=["stream"])
            outputs: dict[str, CounterMetricFamily] = {}

            def output(stream, worker):
                for key, v in worker.counters().items():
                    fam = outputs.get(key)
                    if fam is None:
                        fam = outputs[key] = c(f"avgn_output_{key}", f"output counter: {key}", labels=["stream", "output"])
                    fam.add_metric([stream, worker.name], v)
            latency = HistogramMetricFamily("avgn_decision_latency_seconds", "capture to result", labels=["stream"])
            for st in streams:
                n = [st.name]
                up.add_metric(n, 1.0 if st.status == "online" else 0.0)
                rate.add_metric(n, st.stats.recent_rate())
                snippets.add_metric(n, st.stats.snippets)
                decisions.add_metric(n, st.stats.decisions)
                for reason, v in dict(st.drops, late=st.stats.late).items():
                    dropped.add_metric(n + [reason], v)
                stale.add_metric(n, st.stats.stale)
                reconnects.add_metric(n, st.reconnects)
                outages.add_metric(n, st.outages)
                audio = st.audio_info()
                akind.add_metric(n + [audio["kind"]], 1.0)
                agaps.add_metric(n, st.stats.audio_gaps)
                asecs.add_metric(n, audio.get("gap_seconds") or 0.0)
                drift.add_metric(n, (audio.get("drift_ms") or 0.0) / 1e3)
                for label, v in st.tracker.by_label.items():
                    events.add_metric(n + [label], v)
                for w in st.sinks:
                    output(st.name, w)
                _hist(latency, n, st.stats.latency)
            for w in service.shared:
                output("", w)
            yield from (up, rate, snippets, decisions, dropped, stale, reconnects, outages, events, latency,
                        akind, agaps, asecs, drift)
            yield from outputs.values()
            sch = service.scheduler
            batch = HistogramMetricFamily("avgn_batch_size", "items per stage call", labels=["kind"])
            _hist(batch, ["snippets"], sch.snippet_batches)
            _hist(batch, ["decisions"], sch.decision_batches)
            secs = HistogramMetricFamily("avgn_inference_seconds", "inference time per tick", labels=["phase"])
            for phase, h in sch.seconds.items():
                _hist(secs, [phase], h)
            failed = c("avgn_backend_failed_calls", "backend calls that failed (server down, timeout)",
                       labels=["phase"])
            for phase, n in sch.failed_calls.items():
                failed.add_metric([phase], n)
            yield batch
            yield secs
            yield failed
            yield g("avgn_streams", "streams configured", value=len(streams))

    registry = CollectorRegistry()
    registry.register(Collector())
    ProcessCollector(registry=registry)
    return registry
