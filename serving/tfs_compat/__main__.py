"""`python -m serving.tfs_compat --port=... --rest_api_port=... --model_name=... --model_base_path=...`"""

import sys

from serving.tfs_compat.flags import parse_flags
from serving.tfs_compat.server import serve

if __name__ == "__main__":
    sys.exit(serve(parse_flags()))
