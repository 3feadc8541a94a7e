"""From event to request: ``decide`` (pure) makes a Plan, ``build`` makes the Request.

``render`` runs both for review (goldens, ``relay render``); the delivery loop
runs them apart, with a read-before-write lookup in between.
"""
