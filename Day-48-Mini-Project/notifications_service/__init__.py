"""notifications-service: one notification per event for its user, read back with GET /notifications."""
