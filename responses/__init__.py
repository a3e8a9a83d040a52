"""Responses: plans, runs, call-and-answer and escalation, measures, notifiers, reports, audit."""
