"""Pages composed from every app: the plan page and the register (``plans``), each
person's home (``home``, ``dashboard``), a plan's timeline (``timeline``), the weekly
digest email (``digest``) and the failed-emails page for administrators
(``failed_emails``).
"""
