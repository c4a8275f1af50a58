"""Speed comparisons with their uncertainty: the timing protocol (interleaved windows of fixed
work), its statistics (medians, bootstrap intervals, the A/A noise floor, verdicts) and its
typed records. `harness retime` writes them; the report reads them (harness.speed.load)."""
