"""One capability per module: parse → authorize → plan → act → report. Modules here are imported at
start-up, which registers their commands, buttons, routes and jobs."""
