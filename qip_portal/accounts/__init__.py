"""Who is signed in and how: sign-in and password pages (``sign_in``), two-step
verification (``two_step``, ``middleware``), sessions that end when a role changes
(``sessions``), and the security events an administrator reads (``security_events``).
"""
