"""The dataset once written: reading `segments/` and `speakers/` tolerantly, and exporting it to
the formats training toolkits read (`mikupal export`)."""
