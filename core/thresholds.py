"""Every number that decides when something is due, ready or judged, in one place.

Pure Python (no Django), so the SPC engine in ``audits.spc`` can read it too.
"""

# --- Statistics (NHS England, Making Data Count) ----------------------------------------

# A partition, a baseline or a frozen reference needs 12 points; below that its limits
# are "trial" limits (MDC SQL @SettingMinimumPointsPartition; NHSRplotthedots locks
# limits at 12 too).
MIN_PARTITION_POINTS = 12
# Fewer points than this are shown as a run chart, without limits or icons (MDC SQL
# @SettingMinimumPoints).
MIN_SPC_POINTS = 15

# --- Schedules ----------------------------------------------------------------------------

# A re-audit is "due soon" this many days before its date: on the pages, the home
# counts and in the reminder emails alike.
DUE_SOON_DAYS = 14

# --- Monitoring after step-down -------------------------------------------------------

# Months a stepped-down plan is monitored unless the group says otherwise.
DEFAULT_MONITORING_MONTHS = 6

# --- Signing (e-signature on the pattern of 21 CFR Part 11 §11.200) ---------------------

# Wrong passwords or codes when signing, per person, before signing locks...
SIGNING_FAILURE_LIMIT = 5
# ...for this many minutes after the latest of them.
SIGNING_LOCK_MINUTES = 15

# --- Share links for inspectors (qip_portal/packs/sharing.py) ----------------------------------

# A share link lasts this many days unless the quality lead chooses otherwise...
SHARE_LINK_DEFAULT_DAYS = 7
# ...and never longer than this.
SHARE_LINK_MAX_DAYS = 30
