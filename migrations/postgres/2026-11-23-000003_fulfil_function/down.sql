DROP FUNCTION payhook_fulfil;
