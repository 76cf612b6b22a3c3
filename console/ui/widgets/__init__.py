"""The widgets of the run screen: header, DAG view, step detail, log tail and audit pane."""
