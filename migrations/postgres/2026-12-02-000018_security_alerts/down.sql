DROP TABLE webhook_deliveries;
DROP TABLE security_alerts;
