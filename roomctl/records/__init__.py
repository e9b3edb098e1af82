"""What a session leaves behind, derived from its events by the pure timeline: the report
picture (`report`), a preset's chart (`chart`) and the exports (`export`)."""
