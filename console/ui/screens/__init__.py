"""The run screen and its dialogs (approval, confirm, params, help)."""
