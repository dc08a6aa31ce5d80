"""Visits (探访关爱) and safety rounds (机构安全巡检): services and routes (issue 15)."""
