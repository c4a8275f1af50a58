"""Speed comparisons run: each backend of one spec held in a worker process of its own, and
every comparison of the timing protocol (harness.measure.protocol) between them, for
`harness retime`. The statistics and records live in harness.measure."""
