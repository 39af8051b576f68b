"""The sample application: a small posts site showing every example of actionkit."""
