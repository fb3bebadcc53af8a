"""gunicorn.conf.py - the production settings of the service lode replaces
(shared/reference/production-deployment-status.txt), unchanged except that
PEER_MAX_REQUESTS may override max_requests (0: never recycle) for a run
that shows the stack without worker recycling."""
import os

bind = "0.0.0.0:" + os.environ.get("PORT", "10000")
workers = 1            # Single worker optimized for memory
threads = 2            # Minimal threading for I/O
max_requests = int(os.environ.get("PEER_MAX_REQUESTS", "50"))  # leak guard
timeout = 30           # Balance for LLM response times
preload_app = False    # Avoid memory duplication
