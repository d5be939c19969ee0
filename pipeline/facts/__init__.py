"""Facts the whole project shares, in one bottom layer.

Where a run writes (`layout`), where its ML Metadata and MLflow stores are
(`metadata_location`, `tracking_location`), the pipeline's component ids
(`components`), the kinds of a column's values (`kinds`), how a SQL
source's URL is read (`sql_url`) and the installed commands (`commands`).
Each fact is written here once and imported from here by everyone; this
package imports nothing else of the project (tests/test_architecture.py),
so any layer may import it.
"""
