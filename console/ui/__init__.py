"""The Textual UI: the run screen, its dialogs and widgets. Only this package imports textual."""
