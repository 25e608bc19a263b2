"""Riverbank's Confluent-compatible schema registry and the project's Avro schema tooling.

Module map (dependencies point downwards only):

* ``cli`` - typer commands (``registry serve``, ``schemas register|check``)
* ``server`` - settings -> app -> uvicorn;  ``workflows`` - register/check the schemas/ catalog
* ``api`` - Starlette routes, content negotiation, basic auth, body limits, error bodies
* ``service`` - what each REST operation does (no HTTP)
* ``storage`` - durable sqlite store;  ``compatibility`` - the seven levels over Avro resolution
* ``avro_schema`` - parse/validate/canonicalize;  ``catalog`` - schemas/subjects.toml
* ``errors`` - REST errors (Confluent codes) and CLI errors (RiverbankError)

The service never imports the API layer, and nothing here imports the embedded stack.
"""
