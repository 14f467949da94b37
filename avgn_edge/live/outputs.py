"""``live``'s outputs: the sections its flags map onto (cli/args.py: output_sections), built by the
one output factory (sinks/outputs.py), and the web view's server."""

from __future__ import annotations

from ..sinks.base import Fanout
from ..sinks.records import Media


class LiveOutputs:
    """The outputs of one ``live`` run (and the web view's server); ``detect`` is the MQTT switch."""

    def __init__(self, wanted: dict, rec, camera: str):
        from ..sinks.outputs import Host, camera_outputs, shared_outputs
        self.camera, self.detect, self.web_server, self.stats_source = camera, True, None, None
        self.media = Media(wanted["record"]["path"]) if wanted.get("record") else None
        cfg = rec.config
        host = Host(rec.labels, [camera], cfg.snippet_period, cfg.sample_rate, lambda cam: self.media,
                    on_set=self._switch, state=lambda cam, feature: self.detect, stats=self.stats)
        if wanted.get("web") is not None:            # the port first: a taken one fails before any output opens
            from ..sinks.httphost import ApiServer
            from ..sinks.web import web_app
            web = wanted["web"]
            self.web_server = ApiServer(lambda: web_app(shared["web"].sink, web["token"], web["host"]), web["host"],
                                        web["port"], setting="--web PORT", alternative="")
            self.web_server.claim()
        shared = shared_outputs(wanted, host)
        self.sinks = Fanout(camera_outputs(wanted, host, camera) + list(shared.values()))

    def start(self):
        if self.web_server is not None:
            self.web_server.start()
            print(f"web view on http://{self.web_server.host}:{self.web_server.port}/", flush=True)

    def _switch(self, camera: str, feature: str, on: bool):
        if camera != self.camera:
            return None
        self.detect = on
        return on

    def stats(self) -> dict:
        s = self.stats_source.summary() if self.stats_source is not None else {}
        return {"cameras": {self.camera: {k: v for k, v in s.items() if not isinstance(v, dict)}}}

    def close(self):
        self.sinks.close()
        if self.web_server is not None:
            self.web_server.stop()
