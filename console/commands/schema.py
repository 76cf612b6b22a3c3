"""`console schema`: the JSON Schema of the workflow format, for editors.

Save it next to your workflows (`console schema > workflow.schema.json`) and put
`#:schema ./workflow.schema.json` on the first line of a workflow: editors that speak TOML
(taplo, Even Better TOML) then complete keys and flag typos as you type.
"""

from __future__ import annotations

import argparse
import json

from console.workflow.model import json_schema


def main(args: argparse.Namespace) -> int:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **json_schema()}
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0
