"""What the tests share: a service in process (apps.py, training.py), events and request bodies
with the domain's defaults (factories.py), the course driver for the running platform
(course.py, platform.py), and the broker, the database and waiting."""
