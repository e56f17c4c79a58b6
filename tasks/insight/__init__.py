"""Campaign insight after a run: the figures the warehouse gives, their charts, the HTML report."""
