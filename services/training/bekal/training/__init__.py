"""Training (industry side): programs, sessions, enrolment, attendance, assessment, completion."""
