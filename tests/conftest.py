import os

import structlog

# botocore must never look for instance metadata or real credentials.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def drop_event(logger, method_name, event_dict):
    raise structlog.DropEvent


# Tests read events through structlog.testing.capture_logs, which replaces
# these processors; everything else would only clutter the output.
structlog.configure(processors=[drop_event])
