"""Probe: identify the input (content hash), read its streams, and reject what cannot be used."""

from __future__ import annotations

from .. import media
from ..config import Resources
from ..records import WorkItem
from .base import Stage


class ProbeStage(Stage):
    name = "probe"
    level = "video"

    @property
    def resources(self) -> Resources:
        """Reading headers and one frame: a small slice of a CPU, so probing never waits on the pools."""
        return Resources(num_cpus=0.25)

    def process(self, item: WorkItem) -> list[WorkItem]:
        video = media.probe(item.path or item.source, source=item.source, video_id=item.video_id or None)
        item.data.video = video
        item.video_id = video.video_id
        if not video.has_audio:
            return [item.reject(self.name, "no_audio_stream", "the file has no decodable audio stream")]
        if not video.has_video:
            return [item.reject(self.name, "no_video_stream", "the file has no decodable video stream (audio only)")]
        return [item]
